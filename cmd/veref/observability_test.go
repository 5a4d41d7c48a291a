package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// A local OTLP/HTTP receiver: what an OpenTelemetry Collector would get.
type otlpReceiver struct {
	mu     sync.Mutex
	traces map[string][]string // trace id -> span names
}

func newOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	rcv := &otlpReceiver{traces: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					id := hex.EncodeToString(sp.TraceId)
					rcv.traces[id] = append(rcv.traces[id], sp.Name)
				}
			}
		}
		rcv.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return rcv, srv.URL
}

func (r *otlpReceiver) spans(traceID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.traces[traceID]...)
}

func TestServeExportsTracesAndServesMetrics(t *testing.T) {
	rcv, endpoint := newOTLPReceiver(t)
	dir := t.TempDir()
	s := startServe(t, map[string]string{
		"VEREF_DATABASE_URL":          "sqlite:" + dir + "/veref.db",
		"VEREF_METRICS_ADDR":          "127.0.0.1:0",
		"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
	}, "--dev")
	var metricsURL string
	re := regexp.MustCompile(`metrics on (http://\S+)`)
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(s.out.String())
		if m != nil {
			metricsURL = m[1]
		}
		return m != nil
	}, 10*time.Second, 20*time.Millisecond, s.out.String())
	key := keyLine.FindStringSubmatch(s.out.String())
	require.NotNil(t, key, s.out.String())

	req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/api/references/ref_123", nil)
	req.Header.Set("Authorization", "Bearer "+key[1])
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", res.Header.Get("X-Trace-Id"))

	res, err = http.Get(metricsURL)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(body), `veref_http_requests_total{method="GET",route="/v1/api/references/{id}",status="404"}`)
	assert.Contains(t, string(body), "veref_db_pool_max_connections")
	assert.NotContains(t, string(body), "ref_123")

	// The API listener does not serve metrics.
	res, err = http.Get(s.url + "/metrics")
	require.NoError(t, err)
	res.Body.Close()
	assert.NotEqual(t, http.StatusOK, res.StatusCode)

	s.stop(t) // shutdown flushes the batch exporter
	names := rcv.spans("4bf92f3577b34da6a3ce929d0e0e4736")
	assert.Contains(t, names, "GET /v1/api/references/{id}")
	assert.Contains(t, names, "tool references_get")
}

func TestMetricsAreOffByDefault(t *testing.T) {
	s := startServe(t, map[string]string{"VEREF_DATABASE_URL": "sqlite:" + t.TempDir() + "/veref.db"}, "--dev")
	s.stop(t) // everything serve prints at start is out by now
	assert.Contains(t, s.out.String(), "veref listening on")
	assert.NotContains(t, s.out.String(), "metrics on")
}
