-- the cursor moved to :cursor after :applied events; a rebuild whose target it
-- reaches is over
UPDATE consumers SET
    cursor_seq = :cursor,
    applied = applied + :applied,
    updated_at = /*include now*/,
    rebuild_target = CASE WHEN rebuild_target <= :cursor THEN NULL ELSE rebuild_target END,
    rebuild_started_at = CASE WHEN rebuild_target <= :cursor THEN NULL
                              ELSE rebuild_started_at END
WHERE name = :name
