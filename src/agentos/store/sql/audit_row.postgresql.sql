-- fragment (CTEs audit_head_moved, audit_row): append one audit row, taking the next
-- number and chaining the hash under the audit_head row lock (held to commit, so no two
-- rows share a predecessor; SET reads the row's latest committed version after any
-- wait). Parameters :audit_*; /*audit_if*/: the includer's condition on writing it at
-- all. A hot write's own statement carries it (store/audit.py's fragment): the
-- condition reads the CTEs of the write's rows whole first, so the head is locked after
-- them, as when the row is a transaction's last statement
audit_head_moved AS (
    UPDATE audit_head
    SET last_seq = last_seq + 1,
        prev_hash = last_hash,
        last_hash = encode(sha256(convert_to(
            last_hash || ':' || (last_seq + 1)::text || ':' || :audit_body::text, 'UTF8')),
            'hex')
    WHERE id = 1 AND /*audit_if*/
    RETURNING last_seq, prev_hash, last_hash
), audit_row AS (
    INSERT INTO audit_log (seq, at, actor, actor_role, action, outcome, resource_type,
                           resource_id, details, ip, user_agent, prev_hash, hash)
    SELECT last_seq, :audit_at, :audit_actor, :audit_actor_role, :audit_action,
           :audit_outcome, :audit_resource_type, :audit_resource_id, :audit_details::jsonb,
           :audit_ip, :audit_user_agent, prev_hash, last_hash
    FROM audit_head_moved
    RETURNING seq
)
