-- +goose Up
-- Per-key limits (issue 14). New keys store the defaults they were made
-- with; NULL (keys older than this migration) means the server's default.
ALTER TABLE api_keys ADD COLUMN rate_limit_requests INTEGER;
ALTER TABLE api_keys ADD COLUMN rate_limit_per TEXT;
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN agent_daily_tokens INTEGER;

-- Tokens the agent spent per key and UTC day, from the provider's usage.
CREATE TABLE agent_token_spend (
    key_id TEXT NOT NULL,
    day    TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
);
CREATE INDEX agent_token_spend_day ON agent_token_spend (day);

-- The retention sweeper deletes by age.
CREATE INDEX api_key_usage_at ON api_key_usage (at);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX conversations_updated ON conversations (updated_at);
CREATE INDEX audit_events_at ON audit_events (at);
