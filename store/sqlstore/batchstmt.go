package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// The batched inserts (usage rows, audit events) run the same few
// statements on every flush. Chunks are whole powers of two of at most
// maxChunk rows, so a table has at most eight statement texts; each is
// prepared once on the writer, before a flush's transaction takes the
// writer's connection, and the transaction reuses it (Tx.StmtContext finds
// it prepared on that connection). Otherwise SQLite parses a statement of
// up to 1,536 placeholders per chunk per flush, a fifth of the flush.

// maxChunk is well under SQLite's 32,766 parameters.
const maxChunk = 128

// chunkSizes are the row counts n rows are inserted in, largest first.
func chunkSizes(n int) []int {
	var out []int
	for size := maxChunk; n > 0; {
		for size > n {
			size /= 2
		}
		out = append(out, size)
		n -= size
	}
	return out
}

type insertText struct {
	table string
	rows  int
}

// batchStmts holds the statements prepared on the writer, by text.
type batchStmts struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

var insertTexts sync.Map // insertText -> string

// insertSQL is the INSERT of rows rows into table.
func insertSQL(table, cols string, ncols, rows int) string {
	k := insertText{table: table, rows: rows}
	if v, ok := insertTexts.Load(k); ok {
		return v.(string)
	}
	one := "(" + strings.Repeat("?, ", ncols-1) + "?)"
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " (" + cols + ") VALUES ")
	for i := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(one)
	}
	// Rows already present are skipped: a batch retried after a commit
	// whose acknowledgement was lost must not fail on its own rows.
	sb.WriteString(" ON CONFLICT (id) DO NOTHING")
	s := sb.String()
	insertTexts.Store(k, s)
	return s
}

// prepare readies the statements inserting n rows into table. It must run
// outside a transaction on db, whose connection it needs; a statement it
// cannot prepare is run unprepared.
func (b *batchStmts) prepare(ctx context.Context, d *Dialect, db *sql.DB, table, cols string, ncols, n int) {
	for _, size := range chunkSizes(n) {
		text := d.rebind(insertSQL(table, cols, ncols, size))
		b.mu.Lock()
		_, ok := b.stmts[text]
		b.mu.Unlock()
		if ok {
			continue
		}
		st, err := db.PrepareContext(ctx, text)
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.stmts == nil {
			b.stmts = map[string]*sql.Stmt{}
		}
		if _, dup := b.stmts[text]; dup {
			_ = st.Close()
		} else {
			b.stmts[text] = st
		}
		b.mu.Unlock()
	}
}

func (b *batchStmts) prepared(text string) *sql.Stmt {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stmts[text]
}

// insertMany writes rows with multi-row INSERTs, skipping ids already
// present; in a transaction of Store.tx, through the statements prepare
// readied.
//
// values appends a row's column values to args in types database/sql
// passes on without reflection (string, int64, float64, time.Time, or a
// driver.Valuer): a named string type or an int would be converted by
// reflection, value by value.
func insertMany[T any](ctx context.Context, q *Q, table, cols string, ncols int, rows []T, values func(args []any, r T) []any) error {
	args := make([]any, 0, min(len(rows), maxChunk)*ncols)
	for _, size := range chunkSizes(len(rows)) {
		chunk := rows[:size]
		rows = rows[size:]
		args = args[:0]
		for _, r := range chunk {
			args = values(args, r)
		}
		text := insertSQL(table, cols, ncols, size)
		if err := q.execBatch(ctx, text, args); err != nil {
			return err
		}
	}
	return nil
}

// execBatch runs text through its prepared statement when there is one.
func (q *Q) execBatch(ctx context.Context, text string, args []any) (err error) {
	st := q.batch.prepared(q.d.rebind(text))
	if st == nil || q.tx == nil {
		_, err = q.exec(ctx, text, args...)
		return err
	}
	if t, ok := q.w.(traced); ok {
		var end func(error)
		ctx, end = t.span(ctx, "exec", text)
		defer func() { end(err) }()
	}
	ctx, cancel := q.bounded(ctx)
	defer cancel()
	ts := q.tx.StmtContext(ctx, st)
	defer ts.Close()
	_, err = ts.ExecContext(ctx, args...)
	return q.d.err(err)
}
