package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
)

// The three benchmarks share one shape (in-process ServeHTTP, no network) so
// their ratio is the cost of authentication, the registry and usage logging.

func BenchmarkBareHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"tenantId":"acme"}`))
	})
	benchGet(b, h, "")
}

func BenchmarkAuthenticatedMeSQLite(b *testing.B) {
	benchMe(b, storetest.OpenSQLite(b))
}

func BenchmarkAuthenticatedMePostgres(b *testing.B) {
	benchMe(b, storetest.OpenPostgres(b))
}

func benchMe(b *testing.B, st store.Store) { benchMeTraced(b, st, nil) }

// benchMeTraced is benchMe with tp recording the server's spans (nil: ids
// only, as without an OTLP endpoint).
func benchMeTraced(b *testing.B, st store.Store, tp trace.TracerProvider) {
	// The per-key limit would answer 429 long before the benchmark ends;
	// the agent budget is shown as serve shows it.
	e := apitest.New(b, st, apitest.Options{Limits: api.Limits{DefaultRate: auth.RateLimit{Requests: auth.MaxRateRequests, Per: "second"},
		AgentTokens: &quota.AgentTokens{Store: st, ShowFor: quota.DefaultShowFor}}, Tracer: tp})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	benchGet(b, e.Server, key)
}

func benchGet(b *testing.B, h http.Handler, key string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/v1/api/me", nil)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
