package api_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
)

// An audit event storage refuses as it is (NUL for PostgreSQL's jsonb, a
// value no backend can encode) neither holds back the batch it is in nor
// is lost: the others are written as they are, it in its Storable form.
func TestAuditWriterKeepsARefusedEventAndTheRest(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			w := api.NewAuditWriter(st, zerolog.Nop(), time.Hour)
			t.Cleanup(func() {
				// Bounded: before the fix, a refused event held the queue forever.
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_ = w.Close(ctx)
			})
			ev := func(data map[string]any) store.AuditEvent {
				return store.AuditEvent{ID: store.NewID("evt"), TenantID: "acme", Environment: "test", ActorKind: store.ActorAPIKey,
					ActorID: "key_1", Surface: store.SurfaceMCP, Action: "candidates_get", Outcome: store.OutcomeOK, Data: data, At: time.Now()}
			}
			evs := []store.AuditEvent{
				ev(map[string]any{"tool": "candidates_get"}),
				ev(map[string]any{"input": json.RawMessage(`{"id":"a\u0000"}`)}),
				ev(map[string]any{"tool": "candidates_get"}),
				ev(map[string]any{"score": math.Inf(1)}),
				ev(map[string]any{"tool": "candidates_get"}),
			}
			for _, e := range evs {
				w.Record(e)
			}
			require.NoError(t, w.Flush(ctx))
			assert.Zero(t, w.Pending())
			rows, _, err := st.ListAudit(ctx, store.Tenancy{TenantID: "acme", Environment: "test"}, store.AuditFilter{}, store.Page{})
			require.NoError(t, err)
			got := map[string]bool{}
			for _, r := range rows {
				got[r.ID] = true
			}
			for _, e := range evs {
				assert.True(t, got[e.ID], "event %v is stored", e.Data)
			}
		})
	}
}
