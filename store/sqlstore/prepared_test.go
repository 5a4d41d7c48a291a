package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"testing"

	_ "modernc.org/sqlite"
)

// A read pool's query is prepared once and then reused, on every pool
// connection; a text that cannot be prepared, or one past the bound, still
// runs unprepared and answers (or fails) as it would have.
func TestPreparedReadsKeepOneStatementPerText(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/p.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(3)
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	p := &prepared{db: db}
	for i := range 20 {
		var v string
		if err := p.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", 1+i%2).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if want := map[int]string{0: "one", 1: "two"}[i%2]; v != want {
			t.Fatalf("got %q, want %q", v, want)
		}
		rows, err := p.QueryContext(ctx, "SELECT id FROM t ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Close(); err != nil || n != 2 {
			t.Fatalf("%d rows, err %v", n, err)
		}
	}
	if got := p.n.Load(); got != 2 {
		t.Errorf("%d statements kept for 2 texts", got)
	}

	if err := p.QueryRowContext(ctx, "SELECT nope FROM t").Scan(new(string)); err == nil {
		t.Error("a query that cannot be prepared answered without an error")
	}
	if got := p.n.Load(); got != 2 {
		t.Errorf("a text that failed to prepare was kept (%d statements)", got)
	}

	p.n.Store(maxPrepared)
	var v string
	if err := p.QueryRowContext(ctx, "SELECT v FROM t WHERE id = "+strconv.Itoa(2)).Scan(&v); err != nil || v != "two" {
		t.Errorf("past the bound: %q, %v", v, err)
	}
	if _, kept := p.stmts.Load("SELECT v FROM t WHERE id = 2"); kept {
		t.Error("a text past the bound was kept")
	}
}
