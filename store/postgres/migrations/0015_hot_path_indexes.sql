-- +goose Up
-- Every authenticated request writes a usage row, so its indexes are paid
-- on the hot path. A usage id carries its row's at (store.NewIDAt), so a
-- key's rows in a time range are a range of (key_id, id) and the rows old
-- enough to purge a range of the primary key: the two indexes on at go.
DROP INDEX api_key_usage_key_at;
DROP INDEX api_key_usage_at;

-- Audit events too: an event's id carries its at (store.NewAuditEvent), so
-- the retention purge is a range of the primary key; and a trail narrowed
-- to one target is served by (tenant_id, target_id, id) in either
-- environment, the environment being a filter on those few rows.
DROP INDEX audit_events_at;
DROP INDEX audit_events_target;

