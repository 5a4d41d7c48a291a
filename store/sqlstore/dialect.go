// Package sqlstore is the one implementation of store.Queries on
// database/sql that store/sqlite and store/postgres share. Queries are
// written once with '?' placeholders; a Dialect covers the few things the
// two databases disagree on.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/verefwork/veref/store"
)

// SQLiteTimeFormat is fixed-width UTC so that comparing the TEXT columns
// compares the instants.
const SQLiteTimeFormat = "2006-01-02T15:04:05.000000Z"

// Dialect is what differs between the backends.
type Dialect struct {
	Name string
	// Numbered placeholders ($1..$n) instead of '?'.
	Numbered bool
	// TextTime stores times as SQLiteTimeFormat strings rather than native timestamps.
	TextTime bool
	// SkipLocked is appended to the claim SELECTs so concurrent workers
	// pass over rows another transaction is claiming ("" where a single
	// writer already serialises claims).
	SkipLocked string
	// ForUpdate locks the rows a SELECT reads until the transaction ends
	// (PostgreSQL); SQLite needs none, its transactions take the write lock.
	ForUpdate string
	// PrepareReads keeps the read pool's statements prepared (prepared.go),
	// for a driver that keeps none itself.
	PrepareReads bool
	// IsUnique and IsForeignKey classify driver errors.
	IsUnique     func(error) bool
	IsForeignKey func(error) bool

	cache sync.Map // query -> rebound query
}

func (d *Dialect) rebind(q string) string {
	if !d.Numbered {
		return q
	}
	if v, ok := d.cache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range q {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	d.cache.Store(q, b.String())
	return b.String()
}

// normTime is what a round trip gives back, so callers comparing the
// record they wrote with the one they read see equal values.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

func (d *Dialect) t(t time.Time) any {
	if d.TextTime {
		return normTime(t).Format(SQLiteTimeFormat)
	}
	return normTime(t)
}

func (d *Dialect) tp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.t(*t)
}

// err maps a driver error to the store's errors. Anything unrecognised is
// a storage failure the caller cannot fix; the original stays wrapped for logs.
func (d *Dialect) err(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrBadCursor):
		return err
	case d.IsUnique(err):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case d.IsForeignKey(err):
		// A referenced row (tenant, candidate, request…) does not exist in this tenancy.
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	default:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
}

// timeCol scans a timestamp from either backend: native time.Time or the
// SQLite TEXT form. A nil pointer target (pp) receives NULL as nil.
type timeCol struct {
	p  *time.Time
	pp **time.Time
}

func tcol(p *time.Time) *timeCol   { return &timeCol{p: p} }
func tnull(p **time.Time) *timeCol { return &timeCol{pp: p} }

func (c *timeCol) Scan(src any) error {
	var t time.Time
	switch v := src.(type) {
	case nil:
		if c.pp != nil {
			*c.pp = nil
			return nil
		}
		return errors.New("sqlstore: NULL in a NOT NULL time column")
	case time.Time:
		t = v
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return err
		}
	case []byte:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, string(v)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", src)
	}
	t = t.UTC()
	if c.pp != nil {
		*c.pp = &t
	} else {
		*c.p = t
	}
	return nil
}

// jsonCol scans a JSON text column into v.
type jsonCol struct{ v any }

func jcol(v any) *jsonCol { return &jsonCol{v} }

func (c *jsonCol) Scan(src any) error {
	switch s := src.(type) {
	case nil:
		return nil
	case string:
		return json.Unmarshal([]byte(s), c.v)
	case []byte:
		return json.Unmarshal(s, c.v)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T as JSON", src)
	}
}

// js encodes a nested part. Marshal of these plain records cannot fail
// except for values a caller put in a map[string]any that JSON cannot hold,
// which the driver then reports as a bad argument.
func js(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return badJSON{err}
	}
	return string(b)
}

type badJSON struct{ err error }

func (b badJSON) Value() (driver.Value, error) { return nil, b.err }

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
