// Package telemetry sets up OpenTelemetry tracing and gives the rest of the
// code one way to start a span. Spans follow the provider of the span they
// are started under, so a test that serves with an in-memory provider sees
// the tool and store spans too, and code run outside a request (workers)
// records nothing.
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	mrand "math/rand/v2"
	"net/http"
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
// Under a span that records nothing and belongs to no provider (a request
// served by Untraced, or work outside any request) it is the span in ctx
// itself: the child would record nothing either and only cost allocations.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() && parent.TracerProvider() == noProvider {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(instrumentation).Start(ctx, name, trace.WithAttributes(attrs...))
}

// noProvider is what spans without a provider (trace.ContextWithSpanContext,
// the no-op span) answer from TracerProvider.
var noProvider = trace.NewNoopTracerProvider() //nolint:staticcheck // compared with, not used to trace

// Untraced is the context of a request served while nothing is recorded:
// the trace of an incoming traceparent (with its tracestate), or a new one,
// and a new span id, not sampled, as a never-sampling SDK provider would
// make them, so X-Trace-Id, problems, logs and any outgoing traceparent
// carry the same ids. No SDK span is made, here or (see Start) below.
func Untraced(ctx context.Context, h http.Header) context.Context {
	// The propagator is only asked when there is something to read: it
	// canonicalises its header names on every call.
	if h["Traceparent"] != nil || h["Baggage"] != nil {
		ctx = Propagator.Extract(ctx, propagation.HeaderCarrier(h))
	}
	remote := trace.SpanContextFromContext(ctx)
	cfg := trace.SpanContextConfig{TraceID: remote.TraceID(), TraceState: remote.TraceState()}
	// Ids need to be unique, not secret: the SDK draws them from math/rand too.
	for !cfg.TraceID.IsValid() {
		binary.LittleEndian.PutUint64(cfg.TraceID[:8], mrand.Uint64())
		binary.LittleEndian.PutUint64(cfg.TraceID[8:], mrand.Uint64())
	}
	for !cfg.SpanID.IsValid() {
		binary.LittleEndian.PutUint64(cfg.SpanID[:], mrand.Uint64())
	}
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
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
