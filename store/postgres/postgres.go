// Package postgres is the clustered backend: any number of server
// instances share one database through a pgx pool.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// legacyMigrateLock is the pg_advisory_lock key the migration runner before
// goose held.
const legacyMigrateLock int64 = 0x7665726566 // "veref"

// Store is a store.Store on PostgreSQL.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
	db   *sql.DB

	onWatchError atomic.Pointer[func(error)]
	sinks        sinks
	listenerPID  atomic.Uint32
	revokeWait   time.Duration
}

var _ store.Store = (*Store)(nil)

var dialect = &sqlstore.Dialect{
	Name:         "postgres",
	Numbered:     true,
	SkipLocked:   " FOR UPDATE SKIP LOCKED",
	ForUpdate:    " FOR UPDATE",
	IsUnique:     func(err error) bool { return hasCode(err, "23505") },
	IsForeignKey: func(err error) bool { return hasCode(err, "23503") },
}

func hasCode(err error, code string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == code
}

// Open connects to url (a postgres:// URL or key=value string; extra
// parameters such as search_path become session settings). Call Migrate
// before use.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWithTimeout(ctx, url, sqlstore.DefaultTimeout)
}

// OpenWithTimeout is Open with the deadline of every storage call
// (VEREF_DB_TIMEOUT). The server enforces it too, through the session's
// statement_timeout and lock_timeout, so a query its caller abandoned does
// not keep running and holding locks; a transaction left idle is ended
// after twice as long. Settings given in url win.
func OpenWithTimeout(ctx context.Context, url string, timeout time.Duration) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
		for k, v := range map[string]string{"statement_timeout": ms(timeout), "lock_timeout": ms(timeout),
			"idle_in_transaction_session_timeout": ms(2 * timeout)} {
			if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
				cfg.ConnConfig.RuntimeParams[k] = v
			}
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	s := &Store{Store: sqlstore.New(dialect, db, db), pool: pool, db: db, revokeWait: DefaultRevokeWait}
	s.OnKeysChanged(s.awaitEvictions)
	s.SetTimeout(timeout)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Pool is the underlying pgx pool, for what database/sql cannot do
// (COPY, LISTEN/NOTIFY); nothing uses it yet.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// PoolStats reports the pgx pool, which is the real pool under database/sql.
func (s *Store) PoolStats() metrics.DBPoolStats {
	st := s.pool.Stat()
	return metrics.DBPoolStats{MaxOpen: int(st.MaxConns()), Open: int(st.TotalConns()), InUse: int(st.AcquiredConns()),
		Idle: int(st.IdleConns()), WaitCount: st.EmptyAcquireCount(), WaitDuration: st.EmptyAcquireWaitTime()}
}

// Migrate applies the embedded migrations not yet recorded, through goose
// holding a session advisory lock so instances starting together apply
// each one once.
func (s *Store) Migrate(ctx context.Context) error {
	// Its own connections without the pool's statement_timeout and
	// lock_timeout: a migration, or waiting for another instance's, may take
	// longer than a request's statement.
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["statement_timeout"] = "0"
	cfg.RuntimeParams["lock_timeout"] = "0"
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	// The schema is part of the key, as in Exclusive: deployments (and
	// tests) in separate schemas of one database do not wait on each other.
	var key int64
	if err := db.QueryRowContext(ctx, "SELECT hashtextextended('veref:migrate:' || current_schema(), 0)").Scan(&key); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	// goose polls pg_try_advisory_lock; the defaults (every 5s for 5min)
	// would make a second instance wait 5s for a migration of milliseconds.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(key), lock.WithLockTimeout(1, 600))
	if err != nil {
		return err
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return sqlstore.Migrate(ctx, db, sqlstore.Migrations{
		Dialect: goose.DialectPostgres, FS: sub, Locker: locker,
		LegacyTable: "SELECT to_regclass('schema_migrations') IS NOT NULL",
		// The runner before goose held pg_advisory_lock(legacyMigrateLock)
		// while it applied; an older instance still doing so finishes first.
		LegacyWait: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", legacyMigrateLock),
	})
}

func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) Close() error {
	err := s.db.Close()
	s.pool.Close()
	return err
}

// Exclusive runs fn while holding a session advisory lock derived from
// name, so among instances sharing the database only one runs it at a
// time; the others return ran=false at once instead of waiting.
func (s *Store) Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	defer conn.Close()
	var got bool
	// The schema is part of the key: deployments (and tests) sharing a
	// database in separate schemas do not exclude each other.
	key := "veref:" + name + ":"
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1 || current_schema(), 0))", key).Scan(&got); err != nil {
		return false, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	if !got {
		return false, nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1 || current_schema(), 0))", key) //nolint:errcheck
	return true, fn(ctx)
}
