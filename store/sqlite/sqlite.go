// Package sqlite is the embedded single-node backend on modernc.org/sqlite.
//
// SQLite allows one writer at a time, so every write and every transaction
// goes through a single connection (Go queues the callers instead of SQLite
// answering "database is locked"), while reads use a separate pool that WAL
// lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on one SQLite file.
type Store struct {
	*sqlstore.Store
	read, write *sql.DB
	events      *keyEvents
	writerDSN   string
}

var _ store.Store = (*Store)(nil)

var dialect = &sqlstore.Dialect{
	Name:         "sqlite",
	TextTime:     true,
	PrepareReads: true,
	IsUnique: func(err error) bool {
		return hasCode(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
	IsForeignKey: func(err error) bool { return hasCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) },
}

func hasCode(err error, codes ...int) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code() == c {
			return true
		}
	}
	return false
}

// Open opens (creating if needed) the database file at path. Call Migrate
// before use. ":memory:" gives a private in-memory database on a single
// connection, since each connection would otherwise see its own.
func Open(ctx context.Context, path string) (*Store, error) {
	// IMMEDIATE takes the write lock at BEGIN, so a transaction that reads
	// first cannot fail to upgrade later when another process (an admin
	// command) shares the file. temp_store(MEMORY) keeps the statement
	// journal of a multi-row insert inside a transaction (every usage and
	// audit batch) in memory: in a file it spilled past 64 KiB and cost a
	// write per page, about a fifth of each row's cost (BenchmarkWrites).
	writerDSN := dsn(path, writerMark, "journal_mode(WAL)", "temp_store(MEMORY)")
	write, err := sql.Open("sqlite", writerDSN)
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	if path == ":memory:" {
		return newStore(ctx, writerDSN, write, write)
	}
	// Switch the file to WAL before any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("%w: open %s: %w", store.ErrUnavailable, path, err)
	}
	read, err := sql.Open("sqlite", dsn(path, "", "query_only(1)"))
	if err != nil {
		write.Close()
		return nil, err
	}
	// Keep every reader open: database/sql keeps two idle by default, and
	// under load the others were closed and reopened (re-reading the schema)
	// for nearly every query.
	readers := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	read.SetConnMaxIdleTime(0)
	return newStore(ctx, writerDSN, read, write)
}

// uriEscape keeps a path with URI syntax characters a path.
var uriEscape = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

func dsn(path, extra string, pragmas ...string) string {
	q := url.Values{}
	for _, p := range append([]string{"busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"}, pragmas...) {
		q.Add("_pragma", p)
	}
	s := "file:" + uriEscape.Replace(path) + "?" + q.Encode()
	if extra != "" {
		s += "&" + extra
	}
	return s
}

// PoolStats reports the writer and reader pools together.
func (s *Store) PoolStats() metrics.DBPoolStats {
	if s.read == s.write {
		return sqlstore.SQLPoolStats(s.write)
	}
	return sqlstore.SQLPoolStats(s.write, s.read)
}

func newStore(ctx context.Context, writerDSN string, read, write *sql.DB) (*Store, error) {
	s := &Store{Store: sqlstore.New(dialect, read, write), read: read, write: write}
	s.registerEvents(writerDSN)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies the embedded migrations not yet recorded, through goose
// on the single writer connection, which already keeps other writers of
// this process out; another process's writes wait on SQLite's own lock.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Migrations rebuild tables and build indexes on the writer, whose
	// only connection keeps temporary data in memory (see Open): for them
	// sorts and journals go to files again, bounded by the disk.
	if _, err := s.write.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	err = sqlstore.Migrate(ctx, s.write, sqlstore.Migrations{
		Dialect: goose.DialectSQLite3, FS: sub,
		LegacyTable: "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
	})
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sqlstore.DefaultTimeout)
	defer cancel()
	if _, perr := s.write.ExecContext(rctx, "PRAGMA temp_store = MEMORY"); perr != nil && err == nil {
		err = fmt.Errorf("%w: %w", store.ErrUnavailable, perr)
	}
	return err
}

func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []*sql.DB{s.write, s.read} {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	return nil
}

func (s *Store) Close() error {
	s.unregisterEvents()
	if s.read == s.write {
		return s.write.Close()
	}
	return errors.Join(s.read.Close(), s.write.Close())
}
