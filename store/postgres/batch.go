package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlstore"
)

// The batched writes go through pgx directly, in one transaction each: the
// rows by COPY, PostgreSQL's bulk path (a fifth cheaper per row than an
// INSERT unnesting arrays, BenchmarkWrites), then for usage one
// last_used_at update per key, queued in one pgx.Batch. COPY cannot skip
// rows already present, and a batch retried after a commit whose
// acknowledgement was lost holds exactly such rows: it fails on them with a
// unique violation and is written again by an INSERT ... ON CONFLICT DO
// NOTHING, so it cannot block every row behind it. Any other refusal of
// the COPY takes the same INSERT (copyRows).

var usageCols = []string{"id", "key_id", "tenant_id", "environment", "surface", "endpoint", "method", "status",
	"duration_ms", "ip_hash", "trace_id", "at"}

// InsertUsage implements store.Store.
func (s *Store) InsertUsage(ctx context.Context, rows []store.Usage) error {
	if len(rows) == 0 {
		return nil
	}
	latest := sqlstore.LatestUse(rows)
	b := &pgx.Batch{}
	// One statement per key in id order: concurrent flushes from several
	// instances take the row locks in the same order and cannot deadlock.
	for _, id := range sqlstore.SortedKeys(latest) {
		b.Queue("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
			latest[id].UTC(), id)
	}
	row := func(i int) ([]any, error) {
		u := rows[i]
		return []any{u.ID, u.KeyID, u.TenantID, string(u.Environment), string(u.Surface), u.Endpoint, u.Method,
			int32(u.Status), u.DurationMS, u.IPHash, u.TraceID, u.At.UTC()}, nil
	}
	return s.copyRows(ctx, "api_key_usage", usageCols, len(rows), row, b, func(tx pgx.Tx) error {
		return insertUsageSkipping(ctx, tx, rows)
	})
}

// insertUsageSkipping writes rows, skipping those already present.
func insertUsageSkipping(ctx context.Context, tx pgx.Tx, rows []store.Usage) error {
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
	_, err := tx.Exec(ctx, `INSERT INTO api_key_usage (id, key_id, tenant_id, environment, surface, endpoint, method, status, duration_ms, ip_hash, trace_id, at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::int[], $9::float8[], $10::text[], $11::text[], $12::timestamptz[])
		ON CONFLICT (id) DO NOTHING`,
		ids, keys, tenants, envs, surfaces, endpoints, methods, statuses, durations, ips, traces, ats)
	return err
}

var auditCols = []string{"id", "tenant_id", "environment", "actor_kind", "actor_id", "surface", "action", "target_type",
	"target_id", "trace_id", "outcome", "data", "at"}

// InsertAudits implements store.Store.
func (s *Store) InsertAudits(ctx context.Context, evs []store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	data := make([]json.RawMessage, len(evs))
	for i, e := range evs {
		var err error
		if data[i], err = json.Marshal(e.Data); err != nil {
			return fmt.Errorf("audit event %s: %w", e.ID, err)
		}
	}
	row := func(i int) ([]any, error) {
		e := evs[i]
		return []any{e.ID, e.TenantID, string(e.Environment), string(e.ActorKind), e.ActorID, string(e.Surface),
			e.Action, e.TargetType, e.TargetID, e.TraceID, string(e.Outcome), data[i], e.At.UTC()}, nil
	}
	return s.copyRows(ctx, "audit_events", auditCols, len(evs), row, nil, func(tx pgx.Tx) error {
		return insertAuditsSkipping(ctx, tx, evs, data)
	})
}

// insertAuditsSkipping writes evs, skipping those already present.
func insertAuditsSkipping(ctx context.Context, tx pgx.Tx, evs []store.AuditEvent, data []json.RawMessage) error {
	n := len(evs)
	cols := make([][]string, 12)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	ats := make([]time.Time, n)
	for i, e := range evs {
		for j, v := range []string{e.ID, e.TenantID, string(e.Environment), string(e.ActorKind), e.ActorID, string(e.Surface),
			e.Action, e.TargetType, e.TargetID, e.TraceID, string(e.Outcome), string(data[i])} {
			cols[j][i] = v
		}
		ats[i] = e.At.UTC()
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_events (id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data, at)
		SELECT id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data::jsonb, at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])
			AS v(id, tenant_id, environment, actor_kind, actor_id, surface, action, target_type, target_id, trace_id, outcome, data, at)
		ON CONFLICT (id) DO NOTHING`,
		cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], cols[11], ats)
	return err
}

// copyRows writes n rows into table by COPY and then runs then (nil: none),
// in one transaction. When the server refuses the COPY, that transaction is
// rolled back and a second one writes the rows with skip, then runs then.
func (s *Store) copyRows(ctx context.Context, table string, cols []string, n int, row func(int) ([]any, error),
	then *pgx.Batch, skip func(pgx.Tx) error) error {
	finish := func(tx pgx.Tx) error {
		if then == nil || then.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, then).Close()
	}
	var copyErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, copyErr = tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(n, row)); copyErr != nil {
			return copyErr
		}
		return finish(tx)
	})
	// Only a COPY the server answered with an error is written again; a
	// failure of the connection, the deadline or the updates after it is
	// the batch writer's to retry.
	var pe *pgconn.PgError
	if errors.As(copyErr, &pe) {
		// The server refused the COPY: a row already present (23505), a
		// bad value, or a row description this connection read before a
		// migration changed a column's type (08P01, 22P03; the
		// connections holding it are replaced). The INSERT, whose casts
		// are explicit, writes the batch or fails on its own.
		if pe.Code == "08P01" || pe.Code == "22P03" {
			s.pool.Reset()
		}
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := skip(tx); err != nil {
				return err
			}
			return finish(tx)
		})
	}
	if err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}
