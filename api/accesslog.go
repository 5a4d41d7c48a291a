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
	// start is when the access log took the request, on the server's clock.
	start time.Time
}

type accessKey struct{}

// accessState is one request's bookkeeping in the access log, made in one
// allocation on the path every request takes: the context handlers see,
// which answers for accessKey itself instead of adding a context layer,
// the entry, and the status writer.
type accessState struct {
	context.Context
	entry accessEntry
	sw    statusWriter
	// traceHeader backs the X-Trace-Id header value.
	traceHeader [1]string
}

func (s *accessState) Value(key any) any {
	if _, ok := key.(accessKey); ok {
		return &s.entry
	}
	return s.Context.Value(key)
}

// entryOf is the access log's entry for r, or nil for a handler used
// without it.
func entryOf(r *http.Request) *accessEntry {
	e, _ := r.Context().Value(accessKey{}).(*accessEntry)
	return e
}

// requestTraceID is the request's trace id: the one the access log assigned,
// or (for a handler used without it) one taken from traceparent or made up.
func requestTraceID(r *http.Request) string {
	if e := entryOf(r); e != nil {
		return e.traceID
	}
	return telemetry.TraceID(r.Context())
}

// retryAfterSeconds is the Retry-After of every 503: storage outages and
// deadlines are short, and clients retry with backoff from there.
const retryAfterSeconds = "2"

// accessLog writes one line per request (except /healthz, which load
// balancers poll): method, route pattern, status, duration, key prefix and
// trace id, so a trace id a customer quotes can be found. It also gives
// every 503 a Retry-After, and counts every request (/healthz too) in the
// metrics. It must wrap the mux directly: the mux writes the route pattern
// into the request it is handed. untraced is for a server without a tracer:
// the request's trace ids are then made here (telemetry.Untraced), sparing
// a middleware layer and its copy of the request.
func accessLog(log zerolog.Logger, now func() time.Time, untraced bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		st := &accessState{Context: r.Context()}
		if untraced {
			st.Context = telemetry.Untraced(st.Context, r.Header)
		}
		st.sw.ResponseWriter = w
		if r.URL.Path == "/healthz" {
			defer func() {
				v := recover()
				observe(r, st.sw.status, v, began)
				if v != nil {
					panic(v)
				}
			}()
			next.ServeHTTP(&st.sw, r.WithContext(st.Context))
			return
		}
		e := &st.entry
		e.start = now()
		e.traceID = telemetry.TraceID(st.Context)
		st.traceHeader[0] = e.traceID
		w.Header()["X-Trace-Id"] = st.traceHeader[:]
		rr := r.WithContext(st)
		sw := &st.sw
		sw.onHeader = retryAfter503
		defer func() {
			// Routes outside the guard (key management, console, CLI
			// sessions, public links) are answered here, never re-panicked.
			v := recover()
			if v != nil {
				recoverPanic(log, sw, rr, e.traceID, v)
			}
			status := observe(rr, sw.status, v, began)
			r.Pattern = rr.Pattern // so the tracing outside names the span by it
			logRequest(log, rr, status, now().Sub(e.start), e)
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v) // net/http aborts the connection quietly
			}
		}()
		next.ServeHTTP(sw, rr)
	})
}

// logRequest writes the access log line.
func logRequest(log zerolog.Logger, r *http.Request, status int, took time.Duration, e *accessEntry) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	ev := log.Info()
	if status >= 500 {
		ev = log.Warn()
	}
	if ev == nil {
		return // the level is off: nothing to format
	}
	// The duration stays a string with one decimal, as it always was;
	// appended to a stack buffer rather than allocated.
	var ms [24]byte
	ev.Str("method", r.Method).Str("route", route).Int("status", status).
		Bytes("duration_ms", strconv.AppendFloat(ms[:0], float64(took.Microseconds())/1000, 'f', 1, 64)).
		Str("key_prefix", e.keyPrefix).Str("trace_id", e.traceID).Msg("request")
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
