package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verefwork/veref/ratelimit"
	"github.com/verefwork/veref/ratelimit/redistest"
)

// The benchmarks share one shape: an in-process handler served through
// httptest, bare or asking a limiter first, so the ratios of one run are
// the limiter's cost per request. Each request is a different key's (as
// under load from many keys), with a limit that never refuses.

var benchLimit = ratelimit.Limit{Requests: 1_000_000, Window: time.Second}

func bare(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func limited(l ratelimit.Limiter) http.Handler {
	var n atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := "bench:" + strconv.FormatUint(n.Add(1)%1000, 10)
		if !l.AllowN(r.Context(), key, benchLimit, 1).Allowed {
			http.Error(w, "limited", http.StatusTooManyRequests)
			return
		}
		bare(w, r)
	})
}

func serve(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

func BenchmarkBareHandler(b *testing.B) { serve(b, http.HandlerFunc(bare)) }

func BenchmarkLimiterInProcess(b *testing.B) { serve(b, limited(ratelimit.NewLocal(nil))) }

func BenchmarkLimiterRedis(b *testing.B) {
	rdb, err := ratelimit.NewRedisClient(redistest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	s := &ratelimit.Shared{Redis: rdb, Prefix: redistest.Prefix(b), Local: ratelimit.NewLocal(nil), Timeout: time.Second}
	serve(b, limited(s))
	if n := s.Fallbacks(); n > 0 {
		b.Fatalf("%d decisions fell back: this measured the in-process limiter", n)
	}
}
