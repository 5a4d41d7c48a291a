package tools

import "context"

// RequestMeta travels with a request from the surface's guard to Invoke and
// back: the trace id for audit rows, and the endpoint name the usage row will
// carry (a surface such as MCP sets it to the tool it ran).
type RequestMeta struct {
	TraceID  string
	Endpoint string
}

type metaKey struct{}

// WithRequestMeta stores m in ctx.
func WithRequestMeta(ctx context.Context, m *RequestMeta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// RequestMetaFrom returns the request's meta, or a fresh one so callers never
// need a nil check.
func RequestMetaFrom(ctx context.Context) *RequestMeta {
	if m, ok := ctx.Value(metaKey{}).(*RequestMeta); ok {
		return m
	}
	return &RequestMeta{}
}
