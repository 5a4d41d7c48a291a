// Package storetest is the conformance suite every store.Store backend
// must pass, and the openers other packages use to test against a real
// database.
package storetest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
)

// Backend is a named way to open a fresh, migrated store.
type Backend struct {
	Name string
	Open func(t *testing.T) store.Store
}

// Backends lists every backend; PostgreSQL skips itself when
// VEREF_TEST_DATABASE_URL is unset (and fails under CI).
func Backends() []Backend {
	return []Backend{
		{"sqlite", func(t *testing.T) store.Store { return OpenSQLite(t) }},
		{"postgres", func(t *testing.T) store.Store { return OpenPostgres(t) }},
	}
}

// testTimeout replaces VEREF_DB_TIMEOUT's 5 seconds in tests: a shared CI
// machine running everything under -race can queue a write for longer than
// that, which would fail tests about something else. The deadline itself is
// tested through a stalled proxy with short timeouts of its own.
const testTimeout = time.Minute

// OpenSQLite returns a migrated store on a fresh temporary file, closed when the test ends.
func OpenSQLite(t testing.TB) store.Store {
	t.Helper()
	return OpenSQLiteAt(t, filepath.Join(t.TempDir(), "veref.db"), testTimeout)
}

const pgHowTo = "set VEREF_TEST_DATABASE_URL to run against PostgreSQL, e.g. " +
	"VEREF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable go test ./..."

// OpenPostgres returns a migrated store in a schema of its own (so tests
// may run in parallel on one database), dropped when the test ends.
func OpenPostgres(t testing.TB) store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.OpenWithTimeout(ctx, PostgresURL(t), testTimeout)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return s
}

// PostgresURL creates an empty schema, dropped when the test ends, and
// returns VEREF_TEST_DATABASE_URL pointed at it. It skips the test when
// the variable is unset, or fails it under CI.
func PostgresURL(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("VEREF_TEST_DATABASE_URL")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("VEREF_TEST_DATABASE_URL is unset under CI: " + pgHowTo)
		}
		t.Skip(pgHowTo)
	}
	ctx := context.Background()
	schema := "veref_test_" + strings.ToLower(auth.RandomString(16))
	admin := func(sql string) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect %s: %v", redact(dsn), err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE SCHEMA " + schema)
	t.Cleanup(func() { admin("DROP SCHEMA " + schema + " CASCADE") })
	return withSearchPath(dsn, schema)
}

// withSearchPath adds search_path as a session parameter, which pgx
// sends for every pooled connection.
func withSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return "VEREF_TEST_DATABASE_URL"
}
