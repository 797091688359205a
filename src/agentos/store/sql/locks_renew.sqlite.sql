-- extend a live lease the owner holds with this token; no row otherwise
UPDATE locks SET expires_at = strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('%+.6f seconds', :ttl_s)),
                 updated_at = strftime('%Y-%m-%d %H:%M:%f000', 'now')
WHERE resource = :resource AND owner = :owner AND token = :token
  AND expires_at >= strftime('%Y-%m-%d %H:%M:%f000', 'now')
RETURNING expires_at
