-- +goose Up
-- Every authenticated request writes a usage row, so the table's b-trees are
-- paid on the hot path. It had five (the rowid table, the id key, and three
-- indexes); now it has two: the table itself, ordered by id, and (key_id,
-- id). A usage id carries its row's at (store.NewIDAt), so a key's rows in
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

-- Audit events likewise (every MCP and agent read writes one): rebuilt
-- WITHOUT ROWID, the table being its id key, and without the index on at,
-- since an event's id carries its at (store.NewAuditEvent) and the purge
-- is a primary-key range. audit_events_target goes too: a trail narrowed to
-- one target is served by (tenant_id, target_id, id) in either environment,
-- the environment a filter on those few rows. The outcome and
-- target indexes become audit_events_failures and audit_events_targeted,
-- holding only the events that did not succeed and those with a target.
CREATE TABLE audit_events_by_id (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    environment TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    surface     TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    trace_id    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    data        TEXT NOT NULL,
    at          TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audit_events_by_id
    SELECT id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data, at
    FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_by_id RENAME TO audit_events;
CREATE INDEX audit_events_tenancy ON audit_events (tenant_id, environment, id);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor_id, id);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, id);
-- Only events with a target: a list read has none.
CREATE INDEX audit_events_targeted ON audit_events (tenant_id, target_id, id) WHERE target_id <> '';
-- Only events that did not succeed: "only failures" is the narrowing asked
-- for, and nearly every event (every read's) succeeds.
CREATE INDEX audit_events_failures ON audit_events (tenant_id, outcome, id) WHERE outcome <> 'ok';
