package agent

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/telemetry"
)

// traced gives each OpenRouter call a client span and sends traceparent,
// so a request can be followed into the provider's logs. The client is
// copied: the caller's may be shared.
func traced(c *http.Client) *http.Client {
	cc := *c
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = otelhttp.NewTransport(base, otelhttp.WithPropagators(telemetry.Propagator))
	return &cc
}

func countTokens(model string, prompt, completion int) {
	metrics.AgentTokens.WithLabelValues(model, "prompt").Add(float64(prompt))
	metrics.AgentTokens.WithLabelValues(model, "completion").Add(float64(completion))
}

// countRun counts a run by how it ended: its stop reason when it finished,
// otherwise why it did not.
func countRun(ctx context.Context, res Response, err error) {
	var pe *providerError
	status := res.StopReason
	switch {
	case errors.As(err, &pe):
		status = "provider_error"
	case err != nil && ctx.Err() != nil:
		status = "cancelled"
	case err != nil:
		status = "error"
	case status == "":
		status = "ok"
	}
	metrics.AgentRuns.WithLabelValues(status).Inc()
}
