package mcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// The same read, candidates_list with limit 10, over REST and over MCP,
// in-process on SQLite: their ratio is what MCP costs beyond REST.

func BenchmarkRESTCandidatesList(b *testing.B) {
	h, key := benchServer(b)
	benchServe(b, h, func() *http.Request { return restRead(key) })
}

func BenchmarkMCPCandidatesList(b *testing.B) {
	h, key := benchServer(b)
	benchServe(b, h, func() *http.Request { return mcpRead(key) })
}

// BenchmarkMCPOverREST alternates the two reads in every worker and times
// each, so the load of a shared machine falls on both alike: its
// mcp/rest-throughput metric is the ratio (target ≥ 0.8), steadier
// than dividing two benchmarks run minutes apart.
func BenchmarkMCPOverREST(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAlternating(b, storetest.OpenSQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchAlternating(b, storetest.OpenPostgres(b)) })
}

func benchAlternating(b *testing.B, st store.Store) {
	h, key := benchServerOn(b, st)
	var restNS, mcpNS atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			serveOK(b, h, restRead(key))
			t1 := time.Now()
			serveOK(b, h, mcpRead(key))
			restNS.Add(int64(t1.Sub(t0)))
			mcpNS.Add(int64(time.Since(t1)))
		}
	})
	b.ReportMetric(float64(restNS.Load())/float64(mcpNS.Load()), "mcp/rest-throughput")
}

func restRead(key string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/api/candidates?limit=10", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

func mcpRead(key string) *http.Request {
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"candidates_list","arguments":{"limit":10}}}`
	r := httptest.NewRequest(http.MethodPost, "/v1/api/mcp", strings.NewReader(call))
	r.Header.Set("Authorization", "Bearer "+key)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	return r
}

func benchServer(b *testing.B) (http.Handler, string) {
	return benchServerOn(b, storetest.OpenSQLite(b))
}

func benchServerOn(b *testing.B, st store.Store) (http.Handler, string) {
	env := apitest.New(b, st, apitest.Options{
		MCP: func(reg *tools.Registry) http.Handler { return vmcp.NewHandler(reg, vmcp.Options{}) },
		// The per-key limit would answer 429 long before the benchmark ends.
		Limits: api.Limits{DefaultRate: auth.RateLimit{Requests: auth.MaxRateRequests, Per: "second"}},
	})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)
	ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}
	now := time.Now().UTC()
	for i := range 20 {
		if err := env.Store.InsertCandidate(context.Background(), ten, store.Candidate{ID: store.NewID("cand"),
			Name: "Candidate " + string(rune('A'+i)), CreatedAt: now, UpdatedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
	return env.Server, key
}

func benchServe(b *testing.B, h http.Handler, req func() *http.Request) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serveOK(b, h, req())
		}
	})
}

func serveOK(b *testing.B, h http.Handler, r *http.Request) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"isError":true`) {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}
