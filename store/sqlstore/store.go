package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
)

// Store is the shared part of both backends: everything in store.Store
// except opening, migrating, pinging and closing.
type Store struct {
	*Q
	d        *Dialect
	write    *sql.DB
	keysHook atomic.Pointer[func(context.Context)]
}

// DefaultTimeout bounds each statement and each transaction unless
// SetTimeout says otherwise (VEREF_DB_TIMEOUT).
const DefaultTimeout = 5 * time.Second

// New wraps a reader and a writer handle (the same *sql.DB on PostgreSQL).
// Transactions always run on the writer.
func New(d *Dialect, read, write *sql.DB) *Store {
	r, w := traced{q: read, system: d.Name}, traced{q: write, system: d.Name}
	if d.PrepareReads {
		r.q = newPrepared(read)
	}
	s := &Store{Q: &Q{d: d, r: r, w: w, timeout: DefaultTimeout, batch: &batchStmts{}}, d: d, write: write}
	s.Q.keys = &keyWrites{store: s}
	return s
}

// SetTimeout sets the deadline of every storage call: a statement outside a
// transaction, or a whole transaction. Past it the call fails with
// store.ErrUnavailable wrapping context.DeadlineExceeded. Call before use.
func (s *Store) SetTimeout(d time.Duration) { s.Q.timeout = d }

// Timeout is the deadline SetTimeout set.
func (s *Store) Timeout() time.Duration { return s.Q.timeout }

// InTx runs fn in one transaction, committing only when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(q store.Queries) error) error {
	return s.tx(ctx, func(q *Q) error { return fn(q) })
}

func (s *Store) tx(ctx context.Context, fn func(q *Q) error) (err error) {
	ctx, span := telemetry.Start(ctx, "db.tx", attribute.String("db.system.name", s.d.Name))
	defer func() { telemetry.End(span, err) }()
	// The whole transaction shares one deadline: database/sql rolls it back
	// when ctx ends, so an abandoned transaction holds no locks.
	ctx, cancel := s.Q.bounded(ctx)
	defer cancel()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.d.err(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	kw := &keyWrites{inTx: true}
	q := traced{q: tx, system: s.d.Name, tx: span}
	if err = fn(&Q{d: s.d, r: q, w: q, keys: kw, timeout: s.Q.timeout, tx: tx, batch: s.Q.batch}); err != nil {
		return err
	}
	err = s.d.err(tx.Commit())
	if kw.touched { // even after a failed commit: it may have committed
		s.keysChanged(ctx)
	}
	return err
}

// KeyByPrefix implements auth.KeyLookup.
func (s *Store) KeyByPrefix(ctx context.Context, prefix string) (auth.KeyRecord, error) {
	k, err := s.keyByPrefix(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) {
		return k, auth.ErrKeyNotFound
	}
	return k, err
}

// KeyByPrefixOn reads a key through db, for a backend that must choose the
// connection (SQLite reading on its writer).
func (s *Store) KeyByPrefixOn(ctx context.Context, db *sql.DB, prefix string) (auth.KeyRecord, error) {
	k, err := (&Q{d: s.d, r: db, w: db}).keyByPrefix(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) {
		return k, auth.ErrKeyNotFound
	}
	return k, err
}

func (s *Store) InsertUsage(ctx context.Context, rows []store.Usage) error {
	if len(rows) == 0 {
		return nil
	}
	latest := LatestUse(rows)
	s.batch.prepare(ctx, s.d, s.write, "api_key_usage", usageCols, 12, len(rows))
	return s.tx(ctx, func(q *Q) error {
		err := insertMany(ctx, q, "api_key_usage", usageCols, 12, rows, func(args []any, u store.Usage) []any {
			return append(args, u.ID, u.KeyID, u.TenantID, string(u.Environment), string(u.Surface), u.Endpoint, u.Method, int64(u.Status),
				u.DurationMS, u.IPHash, u.TraceID, q.d.t(u.At))
		})
		if err != nil {
			return err
		}
		for _, id := range sortedKeys(latest) {
			at := q.d.t(latest[id])
			if _, err := q.exec(ctx, "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)", at, id, at); err != nil {
				return err
			}
		}
		return nil
	})
}

// InsertAudits writes a batch of audit events in one transaction; events
// already written are skipped, so a retried batch is safe.
func (s *Store) InsertAudits(ctx context.Context, evs []store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	s.batch.prepare(ctx, s.d, s.write, "audit_events", auditCols, 13, len(evs))
	return s.tx(ctx, func(q *Q) error {
		return insertMany(ctx, q, "audit_events", auditCols, 13, evs, func(args []any, e store.AuditEvent) []any {
			return append(args, e.ID, e.TenantID, string(e.Environment), string(e.ActorKind), e.ActorID, string(e.Surface), e.Action,
				e.TargetType, e.TargetID, e.TraceID, string(e.Outcome), js(e.Data), q.d.t(e.At))
		})
	})
}

// LatestUse is each key's most recent use in rows: one last_used_at update
// per key per batch.
func LatestUse(rows []store.Usage) map[string]time.Time {
	latest := map[string]time.Time{}
	for _, u := range rows {
		if t, ok := latest[u.KeyID]; !ok || u.At.After(t) {
			latest[u.KeyID] = u.At
		}
	}
	return latest
}

// SortedKeys gives concurrent batches the same lock order on PostgreSQL.
func SortedKeys(m map[string]time.Time) []string { return sortedKeys(m) }

func sortedKeys(m map[string]time.Time) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (s *Store) ClaimValuation(ctx context.Context, now, leaseUntil time.Time) (store.Valuation, error) {
	var v store.Valuation
	err := s.tx(ctx, func(q *Q) error {
		var id string
		err := q.w.QueryRowContext(ctx, q.d.rebind(`SELECT id FROM valuations
			WHERE (status = 'queued' AND next_attempt_at <= ?) OR (status = 'running' AND lease_until < ?)
			ORDER BY next_attempt_at, id LIMIT 1`+q.d.SkipLocked), q.d.t(now), q.d.t(now)).Scan(&id)
		if err != nil {
			return q.d.err(err)
		}
		v, err = get(ctx, q, q.w, scanValuation, `UPDATE valuations SET status = 'running', lease_until = ?, attempts = attempts + 1,
			started_at = COALESCE(started_at, ?) WHERE id = ? RETURNING `+valuationCols, q.d.t(leaseUntil), q.d.t(now), id)
		return err
	})
	return v, err
}

func (s *Store) ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, n int) ([]store.OutboxMessage, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []store.OutboxMessage
	err := s.tx(ctx, func(q *Q) error {
		ids, err := all(ctx, q, q.w, func(s scanner) (id string, err error) { return id, s.Scan(&id) },
			`SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id LIMIT ?`+q.d.SkipLocked, q.d.t(now), n)
		if err != nil {
			return err
		}
		out = make([]store.OutboxMessage, 0, len(ids))
		for _, id := range ids {
			m, err := get(ctx, q, q.w, scanOutbox, "UPDATE outbox SET next_attempt_at = ? WHERE id = ? RETURNING "+outboxCols, q.d.t(leaseUntil), id)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// purgeSQL deletes one batch of a kind: the oldest first, by primary key
// so each batch is a short transaction on either backend.
var purgeSQL = map[store.PurgeKind]string{
	// A usage or audit id carries its at (store.NewIDAt), so the old rows
	// are a range of the primary key; at stays a condition, so a row whose
	// id does not carry it (another kind's, or one made before migration
	// 0015) is never deleted young.
	store.PurgeUsage:         "DELETE FROM api_key_usage WHERE id IN (SELECT id FROM api_key_usage WHERE id < ? AND at < ? ORDER BY id LIMIT ?)",
	store.PurgeAudit:         "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE id < ? AND at < ? ORDER BY id LIMIT ?)",
	store.PurgeConversations: "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations WHERE updated_at < ? ORDER BY updated_at LIMIT ?)",
	store.PurgeIdempotency: `DELETE FROM idempotency_keys WHERE (tenant_id, environment, key_id, key) IN
		(SELECT tenant_id, environment, key_id, key FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
	store.PurgeCLISessions: "DELETE FROM cli_sessions WHERE id IN (SELECT id FROM cli_sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
	store.PurgeAgentSpend:  "DELETE FROM agent_token_spend WHERE (key_id, day) IN (SELECT key_id, day FROM agent_token_spend WHERE day < ? ORDER BY day LIMIT ?)",
}

// Purge deletes up to batch rows of kind older than before.
func (s *Store) Purge(ctx context.Context, kind store.PurgeKind, before time.Time, batch int) (int, error) {
	query, ok := purgeSQL[kind]
	if !ok {
		return 0, fmt.Errorf("sqlstore: nothing to purge called %q", kind)
	}
	if batch <= 0 {
		batch = 1000
	}
	args := []any{s.d.t(before), batch}
	switch kind {
	case store.PurgeAgentSpend:
		args[0] = before.UTC().Format(time.DateOnly)
	case store.PurgeUsage:
		args = []any{store.IDAt("use", before), s.d.t(before), batch}
	case store.PurgeAudit:
		args = []any{store.IDAt("evt", before), s.d.t(before), batch}
	}
	n, err := s.exec(ctx, query, args...)
	return int(n), err
}

// Exclusive runs fn; a single-process backend needs no lock. PostgreSQL
// overrides it with an advisory lock.
func (s *Store) Exclusive(ctx context.Context, _ string, fn func(ctx context.Context) error) (bool, error) {
	return true, fn(ctx)
}
