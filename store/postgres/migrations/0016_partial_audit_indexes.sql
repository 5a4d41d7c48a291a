-- +goose NO TRANSACTION
-- +goose Up
-- Two audit indexes keep only the rows their filter can match: the events
-- that did not succeed ("only failures", where nearly every event, every
-- read's, succeeds), and the events that have a target (a list read has
-- none). The queries say outcome <> 'ok' and target_id <> '' in their text
-- so the planner uses them. Built CONCURRENTLY, outside a transaction, so
-- audit writes and trail reads go on meanwhile; the full indexes they
-- replace serve until they are dropped. Each step is safe to run again: an
-- index a failed build left invalid is dropped and built anew.
DROP INDEX CONCURRENTLY IF EXISTS audit_events_failures;
CREATE INDEX CONCURRENTLY audit_events_failures ON audit_events (tenant_id, outcome, id) WHERE outcome <> 'ok';
DROP INDEX CONCURRENTLY IF EXISTS audit_events_targeted;
CREATE INDEX CONCURRENTLY audit_events_targeted ON audit_events (tenant_id, target_id, id) WHERE target_id <> '';
DROP INDEX CONCURRENTLY IF EXISTS audit_events_outcome;
DROP INDEX CONCURRENTLY IF EXISTS audit_events_target_any;
