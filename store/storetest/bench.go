package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// BenchmarkWrites times the two writes every request pays for, per row,
// in the batches the writers use (500): a usage row (every authenticated
// call) and an audit event (every MCP or agent read). Building the rows is
// not timed; the usage batch's last_used_at update finds no key here, one
// statement per batch either way.
func BenchmarkWrites(b *testing.B, st store.Store) {
	const batch = 500
	ctx := context.Background()
	ten := store.Tenancy{TenantID: "ten_bench", Environment: auth.Test}
	b.Run("usage", func(b *testing.B) {
		rows := make([]store.Usage, batch)
		for b.Loop() {
			b.StopTimer()
			now := time.Now()
			for i := range rows {
				rows[i] = store.Usage{ID: store.NewIDAt("use", now), KeyID: "key_bench", TenantID: ten.TenantID, Environment: ten.Environment,
					Surface: "rest", Endpoint: "GET /v1/api/me", Method: "GET", Status: 200, DurationMS: 0.25,
					IPHash: "0123456789abcdef0123", TraceID: "3ecab2db39f1e7dca0b1e97e22787682", At: now}
			}
			b.StartTimer()
			if err := st.InsertUsage(ctx, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
	})
	b.Run("audit", func(b *testing.B) {
		evs := make([]store.AuditEvent, batch)
		by := store.Actor{Kind: store.ActorAPIKey, ID: "key_bench"}
		for b.Loop() {
			b.StopTimer()
			now := time.Now()
			for i := range evs {
				evs[i] = store.NewAuditEvent(ten, by, "mcp", "3ecab2db39f1e7dca0b1e97e22787682", "candidates_list", now).
					On("candidate", "").WithData(map[string]any{"tool": "candidates_list", "input": map[string]any{"limit": 10}})
			}
			b.StartTimer()
			if err := st.InsertAudits(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
	})
}
