package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/telemetry"
)

// accessEntry is what inner handlers tell the access log about a request.
// The access log makes it before routing; the guard fills in the key.
type accessEntry struct {
	traceID   string
	keyPrefix string
}

type accessKey struct{}

// requestTraceID is the request's trace id: the one the access log assigned,
// or (for a handler used without it) one taken from traceparent or made up.
func requestTraceID(r *http.Request) string {
	if e, ok := r.Context().Value(accessKey{}).(*accessEntry); ok {
		return e.traceID
	}
	return telemetry.TraceID(r.Context())
}

// noteKeyPrefix records the public prefix of the key a request used.
func noteKeyPrefix(ctx context.Context, prefix string) {
	if e, ok := ctx.Value(accessKey{}).(*accessEntry); ok {
		e.keyPrefix = prefix
	}
}

// retryAfterSeconds is the Retry-After of every 503: storage outages and
// deadlines are short, and clients retry with backoff from there.
const retryAfterSeconds = "2"

// accessLog writes one line per request (except /healthz, which load
// balancers poll): method, route pattern, status, duration, key prefix and
// trace id, so a trace id a customer quotes can be found. It also gives
// every 503 a Retry-After, and counts every request (/healthz too) in the
// metrics. It must wrap the mux directly: the mux writes the route pattern
// into the request it is handed.
func accessLog(log zerolog.Logger, now func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		if r.URL.Path == "/healthz" {
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				v := recover()
				observe(r, sw.status, v, began)
				if v != nil {
					panic(v)
				}
			}()
			next.ServeHTTP(sw, r)
			return
		}
		start := now()
		e := &accessEntry{traceID: telemetry.TraceID(r.Context())}
		w.Header().Set("X-Trace-Id", e.traceID)
		rr := r.WithContext(context.WithValue(r.Context(), accessKey{}, e))
		sw := &statusWriter{ResponseWriter: w, onHeader: retryAfter503}
		defer func() {
			// Routes outside the guard (key management, console, CLI
			// sessions, public links) are answered here, never re-panicked.
			v := recover()
			if v != nil {
				recoverPanic(log, sw, rr, e.traceID, v)
			}
			status := observe(rr, sw.status, v, began)
			r.Pattern = rr.Pattern // so the tracing outside names the span by it
			route := rr.Pattern
			if route == "" {
				route = "unmatched"
			}
			ev := log.Info()
			if status >= 500 {
				ev = log.Warn()
			}
			ev.Str("method", r.Method).Str("route", route).Int("status", status).
				Str("duration_ms", strconv.FormatFloat(float64(now().Sub(start).Microseconds())/1000, 'f', 1, 64)).
				Str("key_prefix", e.keyPrefix).Str("trace_id", e.traceID).Msg("request")
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v) // net/http aborts the connection quietly
			}
		}()
		next.ServeHTTP(sw, rr)
	})
}

func retryAfter503(h http.Header, status int) {
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfterSeconds)
	}
}

// observe counts the request in the metrics and returns its status: 500
// for a panic, 200 when nothing was written.
func observe(r *http.Request, status int, panicked any, began time.Time) int {
	switch {
	case panicked != nil:
		status = http.StatusInternalServerError
	case status == 0:
		status = http.StatusOK
	}
	observeRequest(r, status, time.Since(began))
	return status
}

// observeRequest is a variable only so the overhead benchmark can measure
// a request without it (BenchmarkObservability).
var observeRequest = metrics.Observe
