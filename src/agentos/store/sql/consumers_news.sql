-- whether the log's horizon is past the consumer's cursor (a consumer never run
-- stands at 0): a follower's look before it takes a write transaction
SELECT coalesce((SELECT cursor_seq FROM consumers WHERE name = :name), 0)
    < coalesce((/*include events_horizon*/), 0)
