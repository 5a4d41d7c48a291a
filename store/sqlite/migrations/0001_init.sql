-- +goose Up
-- Times are TEXT in the fixed-width UTC form 2006-01-02T15:04:05.000000Z so
-- comparing strings compares instants. Nested parts are JSON TEXT.

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    clerk_org_id TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX tenants_clerk_org ON tenants (clerk_org_id) WHERE clerk_org_id <> '';

CREATE TABLE recruiters (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    email         TEXT NOT NULL,
    clerk_user_id TEXT NOT NULL DEFAULT '',
    admin         INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX recruiters_clerk_user ON recruiters (tenant_id, clerk_user_id) WHERE clerk_user_id <> '';

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    recruiter_id TEXT NOT NULL REFERENCES recruiters (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    environment  TEXT NOT NULL,
    hash         BLOB NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    revoked_by   TEXT NOT NULL DEFAULT '',
    revoke_note  TEXT NOT NULL DEFAULT '',
    last_used_at TEXT
);
CREATE UNIQUE INDEX api_keys_tenant_name ON api_keys (tenant_id, name);
CREATE INDEX api_keys_tenant_recruiter ON api_keys (tenant_id, recruiter_id, id);

-- No foreign key: a usage batch must never be refused because of one row.
CREATE TABLE api_key_usage (
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
);
CREATE INDEX api_key_usage_key ON api_key_usage (key_id, id);

CREATE TABLE audit_events (
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
);
CREATE INDEX audit_events_tenancy ON audit_events (tenant_id, environment, id);
CREATE INDEX audit_events_target ON audit_events (tenant_id, environment, target_id, id);

CREATE TABLE candidates (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    environment  TEXT NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    phone        TEXT NOT NULL,
    role         TEXT NOT NULL,
    external_ref TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    UNIQUE (tenant_id, environment, id)
);
CREATE INDEX candidates_email ON candidates (tenant_id, environment, lower(email));
CREATE INDEX candidates_external_ref ON candidates (tenant_id, environment, external_ref);

-- The composite foreign keys keep a child in its parent's tenancy.
CREATE TABLE reference_requests (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    environment  TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    recruiter_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    due_date     TEXT,
    questions    TEXT NOT NULL,
    referees     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    UNIQUE (tenant_id, environment, id),
    FOREIGN KEY (tenant_id, environment, candidate_id) REFERENCES candidates (tenant_id, environment, id)
);
CREATE INDEX reference_requests_candidate ON reference_requests (tenant_id, environment, candidate_id, id);
CREATE INDEX reference_requests_status ON reference_requests (tenant_id, environment, status, id);

CREATE TABLE reports (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    environment TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    content     TEXT NOT NULL,
    shares      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, environment, request_id) REFERENCES reference_requests (tenant_id, environment, id)
);
CREATE INDEX reports_request ON reports (tenant_id, environment, request_id, id);

CREATE TABLE valuations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    environment     TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    score           REAL,
    components      TEXT NOT NULL,
    rationale       TEXT NOT NULL,
    error           TEXT NOT NULL,
    worker_id       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    FOREIGN KEY (tenant_id, environment, request_id) REFERENCES reference_requests (tenant_id, environment, id)
);
CREATE INDEX valuations_request ON valuations (tenant_id, environment, request_id, id);
CREATE INDEX valuations_status ON valuations (tenant_id, environment, status, id);
CREATE INDEX valuations_claim ON valuations (next_attempt_at, id) WHERE status IN ('queued', 'running');

CREATE TABLE public_tokens (
    hash        BLOB PRIMARY KEY,
    kind        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    environment TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    sub_id      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT
);
CREATE INDEX public_tokens_target ON public_tokens (tenant_id, environment, kind, target_id, sub_id);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    environment     TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    attempts        INTEGER NOT NULL,
    last_error      TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;

CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL,
    environment  TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    key          TEXT NOT NULL,
    operation    TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     BLOB,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, environment, key_id, key)
);

CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    environment  TEXT NOT NULL,
    recruiter_id TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    messages     BLOB,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX conversations_tenancy ON conversations (tenant_id, environment, id);
