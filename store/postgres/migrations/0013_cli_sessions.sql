-- +goose Up
-- CLI logins (issue 13): a device authorization grant in the shape of
-- RFC 8628. The device code is kept only as its keyed hash; the API key is
-- minted when the CLI redeems an approved session, so no plaintext is stored.
CREATE TABLE cli_sessions (
    id             TEXT PRIMARY KEY,
    device_hash    BYTEA NOT NULL UNIQUE,
    user_code      TEXT NOT NULL UNIQUE,
    client_name    TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    interval_s     INTEGER NOT NULL,
    last_polled_at TIMESTAMPTZ,
    tenant_id      TEXT NOT NULL DEFAULT '',
    recruiter_id   TEXT NOT NULL DEFAULT '',
    environment    TEXT NOT NULL DEFAULT '',
    scopes         JSONB NOT NULL DEFAULT '[]',
    key_id         TEXT NOT NULL DEFAULT '',
    decided_at     TIMESTAMPTZ,
    version        INTEGER NOT NULL
);
