package metrics

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
)

// A client choosing its own methods on a catch-all route must not grow
// the request metrics by one series per method it makes up.
func TestMadeUpMethodsShareOneSeries(t *testing.T) {
	before := testutil.CollectAndCount(HTTPRequests)
	for i := range 50 {
		r := httptest.NewRequest(fmt.Sprintf("BREW%d", i), "/nowhere", nil)
		r.Pattern = "/"
		Observe(r, 404, time.Millisecond)
	}
	r := httptest.NewRequest("GET", "/nowhere", nil)
	r.Pattern = "/"
	Observe(r, 404, time.Millisecond)
	assert.Equal(t, before+2, testutil.CollectAndCount(HTTPRequests), "OTHER and GET, not one per method")
	assert.Equal(t, 50.0, testutil.ToFloat64(HTTPRequests.WithLabelValues("/", "OTHER", "404")))
}

// Tool calls are counted under their own labels, also once the cache of
// children is full and lookups go to the vector.
func TestToolCallsCountByLabels(t *testing.T) {
	for i := range maxSeries + 10 {
		ToolCall(fmt.Sprintf("tool_%d", i), "rest", "ok")
	}
	ToolCall("tool_1", "mcp", "ok")
	ToolCall("tool_1", "mcp", "ok")
	ToolCall("tool_1", "mcp", "FORBIDDEN")
	ToolCall(fmt.Sprintf("tool_%d", maxSeries+5), "rest", "ok")
	assert.Equal(t, 1.0, testutil.ToFloat64(ToolCalls.WithLabelValues("tool_1", "rest", "ok")))
	assert.Equal(t, 2.0, testutil.ToFloat64(ToolCalls.WithLabelValues("tool_1", "mcp", "ok")))
	assert.Equal(t, 1.0, testutil.ToFloat64(ToolCalls.WithLabelValues("tool_1", "mcp", "FORBIDDEN")))
	assert.Equal(t, 2.0, testutil.ToFloat64(ToolCalls.WithLabelValues(fmt.Sprintf("tool_%d", maxSeries+5), "rest", "ok")))
}
