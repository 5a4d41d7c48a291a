package api

import (
	"net/http"
	"time"

	"github.com/verefwork/veref/metrics"
)

// SetRequestMetrics turns the access log's request metrics off (or back
// on) for BenchmarkObservability; nothing else may run meanwhile.
func SetRequestMetrics(on bool) {
	if on {
		observeRequest = metrics.Observe
		return
	}
	observeRequest = func(*http.Request, int, time.Duration) {}
}
