package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store/storetest"
)

// BenchmarkGuardOnly is authentication and the guard's bookkeeping with no
// operation behind it (an authenticated 404): what every request pays.
func BenchmarkGuardOnly(b *testing.B) {
	e := apitest.New(b, storetest.OpenSQLite(b), apitest.Options{Limits: api.Limits{DefaultRate: auth.RateLimit{Requests: auth.MaxRateRequests, Per: "second"}}})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/v1/api/bench-no-such-path", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			rec := httptest.NewRecorder()
			e.Server.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotFound {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
