-- +goose Up
-- Every authenticated request writes a usage row, so the table's b-trees are
-- paid on the hot path. It had five (the rowid table, the id key, and three
-- indexes); now it has two: the table itself, ordered by id, and (key_id,
-- id). A usage id carries its row's at (store.UsageID), so a key's rows in
-- a time range and the rows old enough to purge are id ranges.
CREATE TABLE api_key_usage_by_id (
    id          TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    environment TEXT NOT NULL,
    surface     TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    method      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    ip_hash     TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    at          TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO api_key_usage_by_id
    SELECT id, key_id, tenant_id, environment, surface, endpoint, method, status, duration_ms, ip_hash, trace_id, at
    FROM api_key_usage;
DROP TABLE api_key_usage;
ALTER TABLE api_key_usage_by_id RENAME TO api_key_usage;
CREATE INDEX api_key_usage_key ON api_key_usage (key_id, id);

-- Audit events too: an event's id carries its at (store.NewAuditEvent), so
-- the retention purge is a range of the primary key; and a trail narrowed
-- to one target is served by (tenant_id, target_id, id) in either
-- environment, the environment being a filter on those few rows.
DROP INDEX audit_events_at;
DROP INDEX audit_events_target;
