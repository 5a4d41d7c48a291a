// Package telemetry sets up OpenTelemetry tracing and gives the rest of the
// code one way to start a span. Spans follow the provider of the span they
// are started under, so a test that serves with an in-memory provider sees
// the tool and store spans too, and code run outside a request (workers)
// records nothing.
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

const instrumentation = "github.com/verefwork/veref"

// Propagator reads and writes W3C traceparent/tracestate and baggage.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Exporting reports whether the environment asks for OTLP export: the
// standard OTEL_EXPORTER_OTLP_ENDPOINT, or its traces-only variant.
func Exporting(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// NewProvider returns the process's tracer provider. With an OTLP endpoint
// in the environment it exports over OTLP/HTTP (the exporter reads the other
// OTEL_EXPORTER_OTLP_* variables, the SDK OTEL_TRACES_SAMPLER). Without one
// it samples nothing: trace ids are still made, or taken from an incoming
// traceparent, so problems, logs and X-Trace-Id carry one, but nothing is
// recorded or sent. shutdown flushes what is buffered.
func NewProvider(ctx context.Context, getenv func(string) string, version string) (tp *sdktrace.TracerProvider, shutdown func(context.Context) error, err error) {
	if !Exporting(getenv) {
		tp = Quiet()
		return tp, tp.Shutdown, nil
	}
	// The endpoint is passed on so it comes from the same environment as
	// the rest of the configuration; headers, TLS and timeouts are read by
	// the exporter from OTEL_EXPORTER_OTLP_* itself.
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = strings.TrimRight(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(serviceName(getenv)), semconv.ServiceVersion(version)))
	if err != nil {
		res = resource.Default()
	}
	tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

func serviceName(getenv func(string) string) string {
	if n := getenv("OTEL_SERVICE_NAME"); n != "" {
		return n
	}
	return "veref"
}

// Quiet is a provider that makes ids and records nothing.
func Quiet() *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
}

// Start starts a span under the one in ctx, with that span's provider.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(instrumentation).
		Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceID is the trace id of the span in ctx, or a fresh random one when
// there is none (a handler mounted without the tracing middleware).
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
