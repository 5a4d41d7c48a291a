package storetest

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/sqlite"
)

// Outage makes a real database stop answering a store, then answer again.
type Outage interface {
	Start()
	End()
}

// PostgresBehindProxy opens a migrated PostgreSQL store (a schema of its
// own, as OpenPostgres) whose connections go through a StallProxy, with
// every storage call bounded by timeout. Other stores opened on the
// returned URL share the data but not the proxy.
func PostgresBehindProxy(t testing.TB, timeout time.Duration) (*postgres.Store, *StallProxy, string) {
	t.Helper()
	dsn := PostgresURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("VEREF_TEST_DATABASE_URL: %v", err)
	}
	proxy := NewStallProxy(t, u.Host)
	st, err := postgres.OpenWithTimeout(context.Background(), ThroughProxy(t, dsn, proxy.Addr), timeout)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return st, proxy, dsn
}

// Start stalls the proxy.
func (p *StallProxy) Start() { p.Stall() }

// End resumes it.
func (p *StallProxy) End() { p.Resume() }

// SQLiteFile is a migrated SQLite database on a fresh file, which other
// handles (another instance, a lock) can open too.
func SQLiteFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "veref.db")
	OpenSQLiteAt(t, path, testTimeout)
	return path
}

// OpenSQLiteAt opens the SQLite database at path, migrated, with storage
// calls bounded by timeout, closed when the test ends.
func OpenSQLiteAt(t testing.TB, path string, timeout time.Duration) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	s.SetTimeout(timeout)
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return s
}

// SQLiteLock is an outage of a SQLite file: another connection holding its
// write lock, as another process writing would, so writes wait out
// busy_timeout (or the store's deadline) and fail.
type SQLiteLock struct {
	t    testing.TB
	db   *sql.DB
	mu   sync.Mutex
	conn *sql.Conn
}

// NewSQLiteLock prepares a lock on the database at path.
func NewSQLiteLock(t testing.TB, path string) *SQLiteLock {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	l := &SQLiteLock{t: t, db: db}
	t.Cleanup(func() { l.End(); _ = db.Close() })
	return l
}

// Start takes the write lock.
func (l *SQLiteLock) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return
	}
	ctx := context.Background()
	conn, err := l.db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	}
	if err != nil {
		l.t.Errorf("lock sqlite: %v", err)
		return
	}
	l.conn = conn
}

// End releases it.
func (l *SQLiteLock) End() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	_, _ = l.conn.ExecContext(context.Background(), "ROLLBACK")
	_ = l.conn.Close()
	l.conn = nil
}
