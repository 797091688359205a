-- queue the events just numbered :first to :last for routing, those a published trigger
-- may match (routable), in the transaction that appended them (events.insert_rows)
INSERT INTO route_queue (rank, seq)
SELECT e.priority, e.seq FROM events e
WHERE e.seq BETWEEN :first AND :last AND /*include routable*/
