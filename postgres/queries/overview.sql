-- name: CountTenants :one
SELECT COUNT(*) FROM tenants;

-- name: CountInstancesByPhase :many
-- What the fleet overview counts, done by the database rather than by
-- reading every instance: instances per phase (no status yet: pending),
-- and how many of them run away from their home server.
SELECT COALESCE(NULLIF(s.phase, ''), 'pending')::text AS phase,
       COUNT(*) AS instances,
       SUM(CASE WHEN i.home_server_id <> '' AND i.home_server_id <> i.server_id THEN 1 ELSE 0 END)::bigint AS failed_over
FROM instances i
LEFT JOIN instance_status s ON s.tenant_id = i.tenant_id AND s.instance_id = i.id
GROUP BY 1;
