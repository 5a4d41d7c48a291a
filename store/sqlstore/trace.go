package sqlstore

import (
	"context"
	"database/sql"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/telemetry"
)

// traced gives every statement a span under the request's, carrying the
// statement text: it holds placeholders, never values.
type traced struct {
	q      querier
	system string
	// tx is the span of the transaction the statements run in: callers
	// pass their own ctx into InTx's function, so it is not in theirs.
	tx trace.Span
}

func (t traced) span(ctx context.Context, op, query string) (context.Context, func(error)) {
	if t.tx != nil {
		ctx = trace.ContextWithSpan(ctx, t.tx)
	}
	ctx, span := telemetry.Start(ctx, "db."+op,
		attribute.String("db.system.name", t.system), attribute.String("db.query.text", query))
	return ctx, func(err error) { telemetry.End(span, err) }
}

func (t traced) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, end := t.span(ctx, "exec", query)
	res, err := t.q.ExecContext(ctx, query, args...)
	end(err)
	return res, err
}

func (t traced) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, end := t.span(ctx, "query", query)
	rows, err := t.q.QueryContext(ctx, query, args...)
	end(err)
	return rows, err
}

func (t traced) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx, end := t.span(ctx, "query", query)
	row := t.q.QueryRowContext(ctx, query, args...)
	end(row.Err())
	return row
}

// Backlog counts e-mails not yet sent and valuations not yet scored, for
// the metrics scrape; both counts use the workers' partial indexes.
func (s *Store) Backlog(ctx context.Context) (outbox, valuations int, err error) {
	if err = s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").Scan(&outbox); err != nil {
		return 0, 0, s.d.err(err)
	}
	err = s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM valuations WHERE status IN ('queued', 'running')").Scan(&valuations)
	return outbox, valuations, s.d.err(err)
}

// SQLPoolStats adds up database/sql pool statistics, for backends whose
// pools are database/sql's own.
func SQLPoolStats(dbs ...*sql.DB) metrics.DBPoolStats {
	var p metrics.DBPoolStats
	for _, db := range dbs {
		st := db.Stats()
		p.MaxOpen += st.MaxOpenConnections
		p.Open += st.OpenConnections
		p.InUse += st.InUse
		p.Idle += st.Idle
		p.WaitCount += st.WaitCount
		p.WaitDuration += st.WaitDuration
	}
	return p
}
