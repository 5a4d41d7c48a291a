-- +goose Up
-- Suspension is reversible, so it is its own columns beside the permanent
-- revocation; a roll links the two keys both ways so either side can say
-- what happened to it.
ALTER TABLE api_keys ADD COLUMN suspended_at TIMESTAMPTZ;
ALTER TABLE api_keys ADD COLUMN suspended_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN suspend_note TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN rolled_from TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN rolled_to TEXT NOT NULL DEFAULT '';

-- The workspace audit trail lists a whole tenant (both environments) newest
-- first, narrowed by one of these columns; each index serves that filter
-- in id order so a page stops after limit rows.
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor_id, id);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action, id);
CREATE INDEX audit_events_target_any ON audit_events (tenant_id, target_id, id);
-- "Only failures" is the most asked narrowing of a trail.
CREATE INDEX audit_events_outcome ON audit_events (tenant_id, outcome, id);

-- The per-day usage summary reads one key's rows in a time range.
CREATE INDEX api_key_usage_key_at ON api_key_usage (key_id, at);

-- The development identity provider's signing key (serve --dev only): kept
-- in the database so `veref admin session-token --dev` signs with the key
-- the running dev server trusts.
CREATE TABLE dev_signing_keys (
    kid         TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
