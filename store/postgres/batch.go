package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlstore"
)

// The batched writes go through pgx directly: the whole batch is one
// round trip (the rows as arrays, unnested by the server, then one
// last_used_at update per key, queued in one pgx.Batch), where
// database/sql would pay a round trip and its own bookkeeping per statement.

// InsertUsage implements store.Store.
func (s *Store) InsertUsage(ctx context.Context, rows []store.Usage) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	var (
		ids, keys, tenants, envs, surfaces = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		endpoints, methods, ips, traces    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		statuses                           = make([]int32, n)
		durations                          = make([]float64, n)
		ats                                = make([]time.Time, n)
	)
	for i, u := range rows {
		ids[i], keys[i], tenants[i], envs[i], surfaces[i] = u.ID, u.KeyID, u.TenantID, string(u.Environment), string(u.Surface)
		endpoints[i], methods[i], ips[i], traces[i] = u.Endpoint, u.Method, u.IPHash, u.TraceID
		statuses[i], durations[i], ats[i] = int32(u.Status), u.DurationMS, u.At.UTC()
	}
	b := &pgx.Batch{}
	// ON CONFLICT: a batch retried after a commit whose acknowledgement was
	// lost must not fail on its own rows, or it would block every row behind it.
	b.Queue(`INSERT INTO api_key_usage (id, key_id, tenant_id, environment, surface, endpoint, method, status, duration_ms, ip_hash, trace_id, at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::int[], $9::float8[], $10::text[], $11::text[], $12::timestamptz[])
		ON CONFLICT (id) DO NOTHING`,
		ids, keys, tenants, envs, surfaces, endpoints, methods, statuses, durations, ips, traces, ats)
	latest := sqlstore.LatestUse(rows)
	// One statement per key in id order: concurrent flushes from several
	// instances take the row locks in the same order and cannot deadlock.
	for _, id := range sqlstore.SortedKeys(latest) {
		b.Queue("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
			latest[id].UTC(), id)
	}
	return s.sendBatch(ctx, b)
}

// InsertAudits implements store.Store.
func (s *Store) InsertAudits(ctx context.Context, evs []store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	cols := make([][]string, 12)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	ats := make([]time.Time, n)
	for i, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("audit event %s: %w", e.ID, err)
		}
		for j, v := range []string{e.ID, e.TenantID, string(e.Environment), string(e.ActorKind), e.ActorID, string(e.Surface),
			e.Action, e.TargetType, e.TargetID, e.TraceID, string(e.Outcome), string(data)} {
			cols[j][i] = v
		}
		ats[i] = e.At.UTC()
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO audit_events (id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data, at)
		SELECT id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data::jsonb, at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])
			AS v(id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data, at)
		ON CONFLICT (id) DO NOTHING`,
		cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], cols[11], ats)
	return s.sendBatch(ctx, b)
}

// sendBatch runs b in one transaction and one round trip.
func (s *Store) sendBatch(ctx context.Context, b *pgx.Batch) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}
