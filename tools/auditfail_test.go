package tools_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/batch"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/sqlite"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// rawBackend is a store and a way to run SQL beside it, to break storage
// the way an operator or a failing disk would.
type rawBackend struct {
	name string
	open func(t *testing.T) (store.Store, func(sql string))
}

func rawBackends() []rawBackend {
	return []rawBackend{
		{"sqlite", func(t *testing.T) (store.Store, func(string)) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "veref.db")
			st, err := sqlite.Open(ctx, path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			require.NoError(t, st.Migrate(ctx))
			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			return st, func(q string) { _, err := db.Exec(q); require.NoError(t, err, q) }
		}},
		{"postgres", func(t *testing.T) (store.Store, func(string)) {
			ctx := context.Background()
			url := storetest.PostgresURL(t)
			st, err := postgres.OpenWithTimeout(ctx, url, time.Minute)
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			require.NoError(t, st.Migrate(ctx))
			return st, func(q string) {
				conn, err := pgx.Connect(ctx, url)
				require.NoError(t, err)
				defer conn.Close(ctx)
				_, err = conn.Exec(ctx, q)
				require.NoError(t, err, q)
			}
		}},
	}
}

// With the audit table gone, a mutation fails rather than run unaudited,
// and a refusal is still answered: its row waits in the batched writer,
// with an error line, and is written once storage takes it again.
func TestAuditWriteFailuresAreNeverSilent(t *testing.T) {
	for _, b := range rawBackends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st, exec := b.open(t)
			var logs bytes.Buffer // written by Invoke, on this goroutine
			queue := batch.New(st.InsertAudits, zerolog.Nop(), batch.Options[store.AuditEvent]{What: "audit events", Interval: time.Hour, Block: true})
			t.Cleanup(func() { _ = queue.Close(ctx) })
			hasher, err := auth.NewHasher([]byte("audit-pepper-audit-pepper-audit-pepper-x"))
			require.NoError(t, err)
			reg := tools.New(tools.NewRegistry(st, nil), tools.Deps{Hasher: hasher})
			reg.QueueReadAudits(queue)
			reg.SetLog(zerolog.New(&logs))
			require.NoError(t, st.CreateTenant(ctx, store.Tenant{ID: "acme", Name: "ACME", CreatedAt: time.Now()}))
			p := auth.Principal{TenantID: "acme", Environment: auth.Test, KeyID: "key_1", Scopes: []auth.Scope{auth.CandidatesWrite}}
			call := func(tool, input string) *tools.Error {
				_, err := reg.Invoke(ctx, tools.Call{Principal: p, Surface: tools.SurfaceMCP, Tool: tool, Input: []byte(input)})
				require.Error(t, err, tool)
				return tools.AsError(err)
			}

			exec("ALTER TABLE audit_events RENAME TO audit_events_away")
			created := call("candidates_create", `{"name":"Ann"}`)
			refused := call("references_list", `{"q":"A\u0000"}`)
			assert.EqualValues(t, problem.ScopeMissing, refused.Code, "the refusal is answered as always")
			assert.Contains(t, logs.String(), `"level":"error"`)
			assert.Contains(t, logs.String(), `"attempts":4`)
			assert.Contains(t, logs.String(), `"event_id":"`+refused.AuditID+`"`)
			assert.NotContains(t, logs.String(), `A\\u0000`, "the log names the event, never its data")
			exec("ALTER TABLE audit_events_away RENAME TO audit_events")

			cands, _, err := st.ListCandidates(ctx, store.TenancyOf(p), store.CandidateFilter{}, store.Page{})
			require.NoError(t, err)
			assert.Empty(t, cands, "a mutation whose audit row failed did not happen")
			require.NoError(t, queue.Flush(ctx))
			rows, _, err := st.ListAudit(ctx, store.TenancyOf(p), store.AuditFilter{}, store.Page{})
			require.NoError(t, err)
			got := map[string]store.Outcome{}
			for _, r := range rows {
				got[r.ID] = r.Outcome
			}
			assert.Equal(t, map[string]store.Outcome{created.AuditID: store.Outcome(created.Code), refused.AuditID: store.Outcome(problem.ScopeMissing)}, got)
		})
	}
}

// A storage 503 can come at commit, with the change saved or not: its
// hint must keep telling callers (and the CLI's users) that a retry with
// the same Idempotency-Key is safe.
func TestUnavailableHintSaysTheSameIdempotencyKeyIsSafe(t *testing.T) {
	for _, err := range []error{store.ErrUnavailable, context.DeadlineExceeded} {
		e := tools.AsError(err)
		assert.EqualValues(t, problem.Unavailable, e.Code)
		assert.Contains(t, e.Hint, "same Idempotency-Key")
	}
}
