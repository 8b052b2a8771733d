-- name: insert_tenant
INSERT INTO tenants (id, display_name, default_region, time_zone)
VALUES (%(id)s, %(display_name)s, %(default_region)s, %(time_zone)s)
RETURNING id, display_name, default_region, created_at, time_zone

-- name: get_tenant
SELECT id, display_name, default_region, created_at, time_zone FROM tenants

-- name: update_tenant
UPDATE tenants SET time_zone = coalesce(%(time_zone)s, time_zone)
RETURNING id, display_name, default_region, created_at, time_zone

-- name: insert_api_key
INSERT INTO api_keys (tenant_id, id, display_name, key_hash, key_prefix)
VALUES (%(tenant_id)s, %(id)s, %(display_name)s, %(key_hash)s, %(key_prefix)s)
RETURNING id, tenant_id, display_name, key_prefix, created_at, revoked_at

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = %(id)s
RETURNING id, tenant_id, display_name, key_prefix, created_at, revoked_at

-- name: find_api_key
SELECT id, tenant_id, display_name, key_prefix, created_at, revoked_at
FROM api_keys WHERE key_hash = %(key_hash)s

-- name: get_retention
SELECT id AS tenant_id, closed_conversation_retention, archive_retention, event_retention,
       retention_updated_at AS updated_at
FROM tenants

-- name: update_retention
UPDATE tenants
SET closed_conversation_retention = coalesce(%(closed_conversation_retention)s, closed_conversation_retention),
    archive_retention = coalesce(%(archive_retention)s, archive_retention),
    event_retention = coalesce(%(event_retention)s, event_retention),
    retention_updated_at = now()
RETURNING id AS tenant_id, closed_conversation_retention, archive_retention, event_retention,
          retention_updated_at AS updated_at
