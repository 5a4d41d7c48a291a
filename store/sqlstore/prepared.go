package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// prepared runs a read pool's queries through statements prepared once and
// kept, by text. modernc's SQLite parses a statement's text on every call,
// which was a fifth of the CPU of a REST list read under load; a kept
// *sql.Stmt is prepared on each pool connection the first time it runs
// there. PostgreSQL needs none of this: pgx keeps its own per connection.
type prepared struct {
	db    *sql.DB
	stmts sync.Map // query text -> *sql.Stmt
	n     atomic.Int32
}

// maxPrepared bounds the statements kept. Query texts come from a finite
// set of filters, so this is only a guard against a text that varies.
const maxPrepared = 512

// stmt is the kept statement for query, or nil to run it unprepared: past
// the bound, or when preparing failed (the unprepared run reports why).
func (p *prepared) stmt(ctx context.Context, query string) *sql.Stmt {
	if v, ok := p.stmts.Load(query); ok {
		return v.(*sql.Stmt)
	}
	if p.n.Load() >= maxPrepared {
		return nil
	}
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if v, loaded := p.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt)
	}
	p.n.Add(1)
	return st
}

func (p *prepared) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *prepared) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

// ExecContext is not kept: the read pool writes nothing on the hot path.
func (p *prepared) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.db.ExecContext(ctx, query, args...)
}
