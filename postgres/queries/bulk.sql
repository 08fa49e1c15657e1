-- The bulk forms of the statements the controller makes by the thousand,
-- which only Postgres has: the adapter (querier.gen.go) sends a run of
-- calls of X in a row as one statement XRows, whose params are X's as
-- arrays, row by row (set-returning functions in one select list run in
-- step). A row given twice counts once, the last given, as it would have
-- in calls one by one.

-- name: UpsertInstanceStatusRows :exec
INSERT INTO instance_status (tenant_id, instance_id, server_id, phase, health, last_error, message, attempts, observed_generation, updated_at)
SELECT DISTINCT ON (r.tenant_id, r.instance_id)
       r.tenant_id, r.instance_id, r.server_id, r.phase, r.health, r.last_error, r.message, r.attempts, r.observed_generation, r.updated_at
FROM (SELECT unnest(sqlc.arg(tenant_id)::text[]) AS tenant_id, unnest(sqlc.arg(instance_id)::text[]) AS instance_id,
             unnest(sqlc.arg(server_id)::text[]) AS server_id, unnest(sqlc.arg(phase)::text[]) AS phase,
             unnest(sqlc.arg(health)::text[]) AS health, unnest(sqlc.arg(last_error)::text[]) AS last_error,
             unnest(sqlc.arg(message)::text[]) AS message, unnest(sqlc.arg(attempts)::bigint[]) AS attempts,
             unnest(sqlc.arg(observed_generation)::bigint[]) AS observed_generation, unnest(sqlc.arg(updated_at)::bigint[]) AS updated_at,
             generate_series(1, cardinality(sqlc.arg(tenant_id)::text[])) AS ord) AS r
ORDER BY r.tenant_id, r.instance_id, r.ord DESC
ON CONFLICT (tenant_id, instance_id) DO UPDATE SET
    server_id = excluded.server_id,
    phase = excluded.phase,
    health = excluded.health,
    last_error = excluded.last_error,
    message = excluded.message,
    attempts = excluded.attempts,
    observed_generation = excluded.observed_generation,
    updated_at = excluded.updated_at;

-- name: UpsertTenantStatusRows :exec
INSERT INTO tenant_status (tenant_id, serving, spares, reason, changed_at, updated_at)
SELECT DISTINCT ON (r.tenant_id) r.tenant_id, r.serving, r.spares, r.reason, r.changed_at, r.updated_at
FROM (SELECT unnest(sqlc.arg(tenant_id)::text[]) AS tenant_id, unnest(sqlc.arg(serving)::text[]) AS serving,
             unnest(sqlc.arg(spares)::text[]) AS spares, unnest(sqlc.arg(reason)::text[]) AS reason,
             unnest(sqlc.arg(changed_at)::bigint[]) AS changed_at, unnest(sqlc.arg(updated_at)::bigint[]) AS updated_at,
             generate_series(1, cardinality(sqlc.arg(tenant_id)::text[])) AS ord) AS r
ORDER BY r.tenant_id, r.ord DESC
ON CONFLICT (tenant_id) DO UPDATE SET
    serving = excluded.serving,
    spares = excluded.spares,
    reason = excluded.reason,
    changed_at = excluded.changed_at,
    updated_at = excluded.updated_at;

-- name: DeleteInstanceStatusRows :exec
DELETE FROM instance_status AS s
USING (SELECT unnest(sqlc.arg(tenant_id)::text[]) AS tenant_id, unnest(sqlc.arg(instance_id)::text[]) AS instance_id) AS r
WHERE s.tenant_id = r.tenant_id AND s.instance_id = r.instance_id;

-- name: DeleteTenantStatusRows :exec
DELETE FROM tenant_status WHERE tenant_id = ANY(sqlc.arg(tenant_id)::text[]);

-- name: InsertPlacementRows :exec
INSERT INTO placements (server_id, name, tenant_id, instance_id, created_at)
SELECT r.server_id, r.name, r.tenant_id, r.instance_id, r.created_at
FROM (SELECT unnest(sqlc.arg(server_id)::text[]) AS server_id, unnest(sqlc.arg(name)::text[]) AS name,
             unnest(sqlc.arg(tenant_id)::text[]) AS tenant_id, unnest(sqlc.arg(instance_id)::text[]) AS instance_id,
             unnest(sqlc.arg(created_at)::bigint[]) AS created_at) AS r
WHERE EXISTS (SELECT 1 FROM servers WHERE servers.id = r.server_id)
ON CONFLICT (server_id, name) DO NOTHING;

-- name: InsertEventRows :exec
-- Events keep the order given: their ids grow with it.
INSERT INTO events (at, object, reason, message)
SELECT r.at, r.object, r.reason, r.message
FROM (SELECT unnest(sqlc.arg(at)::bigint[]) AS at, unnest(sqlc.arg(object)::text[]) AS object,
             unnest(sqlc.arg(reason)::text[]) AS reason, unnest(sqlc.arg(message)::text[]) AS message,
             generate_series(1, cardinality(sqlc.arg(at)::bigint[])) AS ord) AS r
ORDER BY r.ord;
