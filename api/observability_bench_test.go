package api_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/store/storetest"
)

// BenchmarkObservability is the authenticated GET /v1/api/me (SQLite) with
// the request metrics off and on, and tracing off (ids only, as without
// OTEL_EXPORTER_OTLP_ENDPOINT) and on (every span sampled and handed to a
// batching exporter that discards it, so the cost is the SDK's, not a
// network's), beside the bare handler, all in one run so their ratios
// compare like with like. "Metrics off" skips the per-request counter and
// histogram; the tool-call counter, one increment, stays.
func BenchmarkObservability(b *testing.B) {
	b.Run("bare", BenchmarkBareHandler)
	for _, metricsOn := range []bool{false, true} {
		for _, tracing := range []bool{false, true} {
			name := map[bool]string{false: "metrics=off", true: "metrics=on"}[metricsOn] +
				map[bool]string{false: "/tracing=off", true: "/tracing=on"}[tracing]
			b.Run(name, func(b *testing.B) {
				api.SetRequestMetrics(metricsOn)
				b.Cleanup(func() { api.SetRequestMetrics(true) })
				var tp trace.TracerProvider // a nil interface, not a nil *sdktrace.TracerProvider
				if tracing {
					sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
					b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
					tp = sdk
				}
				benchMeTraced(b, storetest.OpenSQLite(b), tp)
			})
		}
	}
}
