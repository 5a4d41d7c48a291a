package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store/storetest"
)

// scrape reads /metrics the way Prometheus does, over HTTP.
func scrape(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

// sample is the value of one exact series in a scrape, 0 when absent.
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

func TestMetricsScrape(t *testing.T) {
	st := storetest.OpenSQLite(t)
	e := apitest.New(t, st, apitest.Options{})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	metrics.RegisterStore(st.(metrics.StoreStats))

	get := `veref_http_requests_total{method="GET",route="/v1/api/references/{id}",status="404"}`
	created := `veref_http_requests_total{method="POST",route="/v1/api/candidates",status="201"}`
	refused := `veref_auth_failures_total{code="` + string(problem.AuthInvalidFormat) + `"}`
	toolOK := `veref_tool_calls_total{outcome="ok",surface="rest",tool="candidates_create"}`
	before := scrape(t)

	require.EqualValues(t, 404, e.Do("GET", "/v1/api/references/ref_secret_looking_id", key, nil).Status)
	require.EqualValues(t, 201, e.Do("POST", "/v1/api/candidates", key, map[string]any{"name": "Ada"}).Status)
	require.EqualValues(t, 401, e.Do("GET", "/v1/api/me", "not-a-veref-key", nil).Status)
	e.FlushUsage()

	after := scrape(t)
	assert.Equal(t, 1.0, sample(t, after, get)-sample(t, before, get), "route label is the pattern")
	assert.Equal(t, 1.0, sample(t, after, created)-sample(t, before, created))
	assert.Equal(t, 1.0, sample(t, after, toolOK)-sample(t, before, toolOK))
	assert.GreaterOrEqual(t, sample(t, after, refused)-sample(t, before, refused), 1.0, after)
	assert.GreaterOrEqual(t, sample(t, after, "veref_usage_rows_written_total")-sample(t, before, "veref_usage_rows_written_total"), 2.0, "one per authenticated request")
	assert.NotContains(t, after, "ref_secret_looking_id", "raw paths never become labels")
	assert.Contains(t, after, `veref_http_request_duration_seconds_bucket{method="POST",route="/v1/api/candidates",le="0.005"}`)
	assert.Contains(t, after, "veref_db_pool_open_connections ")
	assert.Contains(t, after, "veref_outbox_pending 0")
	assert.Contains(t, after, "veref_valuations_pending 0")
	assert.Contains(t, after, "go_goroutines ")
	assert.Contains(t, after, "process_cpu_seconds_total ")
}

func TestTracesFollowTheRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	e := apitest.New(t, storetest.OpenSQLite(t), apitest.Options{Tracer: tp})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)

	tpHeader, traceID := newTraceparent()
	res := e.Do("POST", "/v1/api/candidates", key, map[string]any{"name": "Ada"}, "traceparent", tpHeader)
	require.EqualValues(t, 201, res.Status, string(res.Body))
	assert.Equal(t, traceID, res.Header.Get("X-Trace-Id"), "the incoming traceparent is honoured")

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		assert.Equal(t, traceID, s.SpanContext.TraceID().String(), "%s is in the caller's trace", s.Name)
		byName[s.Name] = s
	}
	server, ok := byName["POST /v1/api/candidates"]
	require.True(t, ok, "server span named by pattern; got %v", names(spans))
	tool, ok := byName["tool candidates_create"]
	require.True(t, ok, "tool span; got %v", names(spans))
	assert.Equal(t, server.SpanContext.SpanID(), tool.Parent.SpanID(), "tool under request")
	tx, ok := byName["db.tx"]
	require.True(t, ok, "store spans; got %v", names(spans))
	assert.Equal(t, tool.SpanContext.SpanID(), tx.Parent.SpanID(), "store under tool")
	// Statements sit under their transaction, or under the request (the
	// key lookup) or the tool when they run outside one; never loose.
	inTx := 0
	for _, s := range spans {
		if s.Name != "db.exec" && s.Name != "db.query" {
			continue
		}
		switch s.Parent.SpanID() {
		case tx.SpanContext.SpanID():
			inTx++
		case tool.SpanContext.SpanID(), server.SpanContext.SpanID():
		default:
			t.Errorf("%s %v has no known parent", s.Name, s.Attributes)
		}
	}
	assert.Positive(t, inTx, "the candidate is written inside the tool's transaction")

	// A problem carries the same id as the trace.
	exp.Reset()
	tpHeader, traceID = newTraceparent()
	res = e.Do("GET", "/v1/api/references/nope", key, nil, "traceparent", tpHeader)
	require.EqualValues(t, 404, res.Status)
	assert.Equal(t, traceID, res.JSON()["traceId"])
	assert.Equal(t, traceID, res.Header.Get("X-Trace-Id"))

	// Without a traceparent a fresh trace starts, and its id is the one reported.
	exp.Reset()
	res = e.Do("GET", "/v1/api/me", key, nil)
	require.EqualValues(t, 200, res.Status)
	spans = exp.GetSpans()
	require.NotEmpty(t, spans)
	assert.Equal(t, spans[0].SpanContext.TraceID().String(), res.Header.Get("X-Trace-Id"))
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
