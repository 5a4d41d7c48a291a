package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func preparedDB(t *testing.T, conns int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/p.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	return db
}

// A read pool's query is prepared once and then reused by every call, on
// every connection of the pool at once; a text that cannot be prepared runs
// unprepared and fails as it would have, and is not kept.
func TestPreparedReadsKeepOneStatementPerText(t *testing.T) {
	ctx := context.Background()
	const conns = 3
	db := preparedDB(t, conns)
	p := newPrepared(db)
	one := func() string {
		var v string
		if err := p.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", 1).Scan(&v); err != nil {
			t.Error(err)
		}
		return v
	}
	if v := one(); v != "one" {
		t.Fatalf("got %q", v)
	}
	kept := p.stmts["SELECT v FROM t WHERE id = ?"]
	if kept == nil || len(p.stmts) != 1 {
		t.Fatalf("kept %d statements, not the one run", len(p.stmts))
	}

	// Each call holds its rows open until all have theirs, so the pool
	// runs the kept statement on every connection.
	var opened, done sync.WaitGroup
	opened.Add(conns)
	for range conns {
		done.Go(func() {
			rows, err := p.QueryContext(ctx, "SELECT id FROM t ORDER BY id")
			opened.Done()
			if err != nil {
				t.Error(err)
				return
			}
			opened.Wait()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Close(); err != nil || n != 2 {
				t.Errorf("%d rows, %v", n, err)
			}
			if v := one(); v != "one" {
				t.Errorf("got %q", v)
			}
		})
	}
	done.Wait()
	if got := db.Stats().OpenConnections; got != conns {
		t.Errorf("%d connections ran the statements, want %d", got, conns)
	}
	if len(p.stmts) != 2 || p.stmts["SELECT v FROM t WHERE id = ?"] != kept {
		t.Errorf("%d statements kept, the first one replaced: %v", len(p.stmts), p.stmts["SELECT v FROM t WHERE id = ?"] != kept)
	}

	if err := p.QueryRowContext(ctx, "SELECT nope FROM t").Scan(new(string)); err == nil {
		t.Error("a query that cannot be prepared answered without an error")
	}
	if _, ok := p.stmts["SELECT nope FROM t"]; ok {
		t.Error("a text that failed to prepare was kept")
	}
}

// Past the bound the kept set is retired whole and refilled, and the
// retired statements are closed after the grace: texts built from a
// caller's filters cannot fill it for good.
func TestPreparedReadsRetireAFullSet(t *testing.T) {
	ctx := context.Background()
	p := newPrepared(preparedDB(t, 2))
	p.max, p.grace = 3, 0
	text := func(i int) string {
		return "SELECT v FROM t WHERE id = 2 AND " + strconv.Itoa(i) + " = " + strconv.Itoa(i)
	}
	var first *sql.Stmt
	for i := range 7 {
		var v string
		if err := p.QueryRowContext(ctx, text(i)).Scan(&v); err != nil || v != "two" {
			t.Fatalf("text %d: %q, %v", i, v, err)
		}
		if i == 0 {
			first = p.stmts[text(0)]
		}
	}
	if len(p.stmts) > 3 || p.stmts[text(6)] == nil {
		t.Errorf("%d statements kept after 7 texts with a bound of 3, the newest kept: %v", len(p.stmts), p.stmts[text(6)] != nil)
	}
	if _, ok := p.stmts[text(0)]; ok {
		t.Error("the first text is still kept")
	}
	deadline := time.Now().Add(10 * time.Second)
	for first.QueryRowContext(ctx).Scan(new(string)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("a retired statement was never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
