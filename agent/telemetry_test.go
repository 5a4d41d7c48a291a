package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// Each model call is a span under its agent turn and carries traceparent
// out, so the request can be followed into OpenRouter.
func TestAgentTurnsAreTracedIntoOpenRouter(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	st := storetest.OpenSQLite(t)
	fake := newFakeOpenRouter(t, func(n int, req captured) (int, any) {
		if n == 0 {
			return 200, toolCallsReply(modelPro, nil, fakeCall{"call_1", "whoami", "{}"})
		}
		return 200, answerReply(modelPro, "done")
	})
	cfg := withKey(agent.Config{BaseURL: fake.URL(), Models: []string{modelPro}})
	env := apitest.New(t, st, apitest.Options{Tracer: tp, Agent: func(reg *tools.Registry) http.Handler {
		return agent.NewHandler(reg, st, cfg)
	}})
	env.Tenant("acme")
	key := env.Key("acme", auth.Test)

	res := env.Do("POST", "/v1/api/agent", key, map[string]any{"message": "Who am I?"})
	require.EqualValues(t, http.StatusOK, res.Status, string(res.Body))
	traceID := res.Header.Get("X-Trace-Id")

	reqs := fake.Requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		parts := strings.Split(r.Traceparent, "-")
		require.Len(t, parts, 4, "traceparent %q", r.Traceparent)
		assert.Equal(t, traceID, parts[1], "OpenRouter sees the request's trace")
	}

	var turns, calls, toolSpans int
	spans := exp.GetSpans()
	turnIDs := map[string]bool{}
	for _, s := range spans {
		assert.Equal(t, traceID, s.SpanContext.TraceID().String(), s.Name)
		if s.Name == "agent turn" {
			turns++
			turnIDs[s.SpanContext.SpanID().String()] = true
		}
	}
	for _, s := range spans {
		switch {
		case strings.HasPrefix(s.Name, "HTTP POST") || s.Name == "POST":
			calls++
			assert.True(t, turnIDs[s.Parent.SpanID().String()], "OpenRouter call %q under a turn", s.Name)
		case s.Name == "tool whoami":
			toolSpans++
		}
	}
	assert.Equal(t, 2, turns)
	assert.Equal(t, 2, calls, "spans: %v", spanNames(spans))
	assert.Equal(t, 1, toolSpans)
}

func spanNames(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
