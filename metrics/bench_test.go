package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verefwork/veref/metrics"
)

// BenchmarkObserve is what the request metrics add to every request (a
// counter and a histogram by route), alone: set it against
// BenchmarkObservability in api, whose requests are too noisy on a shared
// machine to show a difference this small.
func BenchmarkObserve(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/v1/api/me", nil)
	r.Pattern = "GET /v1/api/me"
	b.ReportAllocs()
	for b.Loop() {
		metrics.Observe(r, http.StatusOK, time.Millisecond)
	}
}
