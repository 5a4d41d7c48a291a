package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// prepared runs a read pool's queries through statements prepared once and
// kept, by text. modernc's SQLite parses a statement's text on every call,
// which was a fifth of the CPU of a REST list read under load; a kept
// *sql.Stmt is prepared on each pool connection the first time it runs
// there. PostgreSQL needs none of this: pgx keeps its own per connection.
//
// Most texts are few and hot, but some are built from a caller's filters
// (the audit trail's dozen optional ones, a recruiter's keys in an IN
// list), so the kept set is bounded: when it is full it is retired whole
// and refilled by what runs next, so a burst of one-off texts costs the hot
// ones a prepare each, never their speed for good.
type prepared struct {
	db    *sql.DB
	max   int           // texts kept at once (maxPrepared)
	grace time.Duration // how long a retired set stays open (retireGrace)

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

const (
	maxPrepared = 256
	// retireGrace lets a call that took a statement just before its set
	// was retired run it: Close would otherwise fail that call. Rows still
	// open at Close keep the statement until they are closed.
	retireGrace = time.Minute
)

func newPrepared(db *sql.DB) *prepared {
	return &prepared{db: db, max: maxPrepared, grace: retireGrace}
}

// stmt is the kept statement for query, or nil to run it unprepared when
// preparing failed (the unprepared run reports why).
func (p *prepared) stmt(ctx context.Context, query string) *sql.Stmt {
	p.mu.RLock()
	st := p.stmts[query]
	p.mu.RUnlock()
	if st != nil {
		return st
	}
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if kept := p.stmts[query]; kept != nil { // another call prepared it meanwhile
		_ = st.Close()
		return kept
	}
	if len(p.stmts) >= p.max || p.stmts == nil {
		p.retire(p.stmts)
		p.stmts = make(map[string]*sql.Stmt, p.max)
	}
	p.stmts[query] = st
	return st
}

// retire closes a full set once calls that may hold its statements are done.
func (p *prepared) retire(set map[string]*sql.Stmt) {
	if len(set) == 0 {
		return
	}
	time.AfterFunc(p.grace, func() {
		for _, st := range set {
			_ = st.Close()
		}
	})
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
