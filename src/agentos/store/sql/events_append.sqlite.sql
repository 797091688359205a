-- one row of an appended batch (executemany, positional: store/events.py sends each row
-- as a tuple in this order); its seq comes from the head row updated just before, in
-- the same BEGIN IMMEDIATE transaction
INSERT INTO events (seq, id, type, source, payload, priority, correlation_id, causation_id,
                    run_id, subject, dedup_key, created_at)
VALUES (:seq, :id, :type, :source, :payload, :priority, :correlation_id, :causation_id,
        :run_id, :subject, :dedup_key, :created_at)
