// Package metrics holds Veref's Prometheus collectors, so any package can
// count what it does without knowing how metrics are served. The collectors
// live on Registry, not on the global default one, so what /metrics shows
// is exactly this list plus the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every collector below.
var Registry = prometheus.NewRegistry()

var (
	HTTPRequests = counterVec("http_requests_total",
		"HTTP requests answered, by route pattern, method and status.", "route", "method", "status")
	HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "veref", Name: "http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern and method.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method"})
	AuthFailures = counterVec("auth_failures_total",
		"Requests refused before any tool ran, by problem code (missing, invalid, revoked, expired key...).", "code")
	ToolCalls = counterVec("tool_calls_total",
		"Tool invocations, by tool, surface (rest, mcp, agent) and outcome (ok or the problem code).", "tool", "surface", "outcome")
	UsageRowsWritten = counter("usage_rows_written_total", "Usage rows written to the database.")
	UsageRowsDropped = counter("usage_rows_dropped_total", "Usage rows lost: the queue was full or the write failed for good.")
	AgentTokens      = counterVec("agent_tokens_total",
		"Tokens the model provider reported for Ask Veref, by model and kind (prompt, completion).", "model", "kind")
	AgentRuns = counterVec("agent_runs_total",
		"Ask Veref runs, by how they ended (ok, error, refused...).", "status")
	AuditWriteFailures = counterVec("audit_write_failures_total",
		"Audit events outside a transaction whose first write failed, by result: retried (written later), failed (not written by the call; logged at error level).", "result")
	RateLimitFallbacks = counter("ratelimit_fallbacks_total",
		"Rate-limit decisions made in-process because Redis (VEREF_REDIS_URL) did not answer in time.")
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		HTTPRequests, HTTPDuration, AuthFailures, ToolCalls, UsageRowsWritten, UsageRowsDropped,
		AgentTokens, AgentRuns, RateLimitFallbacks, AuditWriteFailures,
	)
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "veref", Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "veref", Name: name, Help: help}, labels)
}

// Handler serves Registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// Observe counts and times one request by its ServeMux pattern; r must be
// the request the mux was handed, which is where it writes the pattern.
// The access log calls it, as it already knows the status: a second
// response-writer wrapper per request would only repeat that work.
func Observe(r *http.Request, status int, elapsed time.Duration) {
	s := series(r.Pattern, methodLabel(r.Method), status)
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

// requestSeries are the children of HTTPRequests and HTTPDuration one kind
// of request counts in. Looking them up by label values hashes and
// compares every label on every request; they are kept here by pattern,
// method and status instead.
type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type seriesKey struct {
	pattern, method string
	status          int
}

// children keeps a vector's children by their labels, so that a hot path
// does not hash and compare every label value on every call. It holds at
// most maxSeries; past that, each lookup builds the child anew (build).
type children[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *children[K, V]) get(k K, build func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	full := len(c.m) >= maxSeries
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build()
	if full {
		return v
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K]V{}
	}
	if len(c.m) < maxSeries {
		c.m[k] = v
	}
	c.mu.Unlock()
	return v
}

var (
	requestChildren children[seriesKey, requestSeries]
	toolChildren    children[[3]string, prometheus.Counter]
)

// maxSeries bounds each cache; patterns, the nine methods and statuses
// (or tools, surfaces and outcomes) make far fewer.
const maxSeries = 1024

// ToolCall counts one tool invocation in ToolCalls.
func ToolCall(tool, surface, outcome string) {
	toolChildren.get([3]string{tool, surface, outcome}, func() prometheus.Counter {
		return ToolCalls.WithLabelValues(tool, surface, outcome)
	}).Inc()
}

// methodLabel keeps the method label to the standard methods: a client
// may send any token as a method on the catch-all routes, and each new one
// would otherwise be a new series in every scrape for the process's life.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func series(pattern, method string, status int) requestSeries {
	return requestChildren.get(seriesKey{pattern: pattern, method: method, status: status}, func() requestSeries {
		route := routeOf(pattern)
		return requestSeries{
			requests: HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: HTTPDuration.WithLabelValues(route, method),
		}
	})
}

// Route is the route label of a request: its ServeMux pattern without the
// method, never the raw path, so ids and tokens in paths never become
// label values. Requests no route matched share one label.
func Route(r *http.Request) string { return routeOf(r.Pattern) }

func routeOf(p string) string {
	if p == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(p, " "); ok {
		return path
	}
	return p
}
