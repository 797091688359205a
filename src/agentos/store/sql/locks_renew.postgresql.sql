-- extend a live lease the owner holds with this token; no row otherwise (the caller
-- then says why)
UPDATE locks SET expires_at = statement_timestamp() + make_interval(secs => :ttl_s),
                 updated_at = statement_timestamp()
WHERE resource = :resource AND owner = :owner AND token = :token
  AND expires_at >= statement_timestamp()
RETURNING expires_at
