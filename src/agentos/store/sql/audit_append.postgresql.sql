-- append one audit row in one round trip: take the next number and chain the
-- hash under the audit_head row lock (held to commit, so no two rows share a
-- predecessor); SET reads the row's latest committed version after any wait
WITH head AS (
    UPDATE audit_head
    SET last_seq = last_seq + 1,
        prev_hash = last_hash,
        last_hash = encode(sha256(convert_to(
            last_hash || ':' || (last_seq + 1)::text || ':' || :body::text, 'UTF8')), 'hex')
    WHERE id = 1
    RETURNING last_seq, prev_hash, last_hash
)
INSERT INTO audit_log (seq, at, actor, actor_role, action, outcome, resource_type, resource_id,
                       details, ip, user_agent, prev_hash, hash)
SELECT last_seq, :at, :actor, :actor_role, :action, :outcome, :resource_type,
       :resource_id, :details::jsonb, :ip, :user_agent, prev_hash, last_hash
FROM head
RETURNING seq
