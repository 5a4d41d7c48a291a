package tools

import (
	"context"
	"sync"
)

// RequestMeta is what the surface's guard knows of a request when it hands
// it on: the trace id for audit rows and problems. Handlers get it as a
// value, so nothing downstream can change what the guard logs.
type RequestMeta struct {
	TraceID string
}

// RequestScope is what a guard puts in a request's context: the meta,
// fixed before the handler runs, and the one thing a handler may tell the
// guard back, the endpoint name for the usage row (ReportEndpoint). A
// guard embeds it where it likes, so handing it on costs no allocation.
type RequestScope struct {
	Meta RequestMeta

	mu       sync.Mutex
	endpoint string
}

type scopeKey struct{}

// WithRequestScope stores s in ctx. s.Meta must not change afterwards.
func WithRequestScope(ctx context.Context, s *RequestScope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// RequestMetaFrom returns a copy of the request's meta; the zero value when
// the request did not come through a guard.
func RequestMetaFrom(ctx context.Context) RequestMeta {
	if s, ok := ctx.Value(scopeKey{}).(*RequestScope); ok {
		return s.Meta
	}
	return RequestMeta{}
}

// ReportEndpoint names what the request ran when the route pattern says too
// little (MCP serves every tool on one route). Without a guard it does
// nothing.
func ReportEndpoint(ctx context.Context, name string) {
	if s, ok := ctx.Value(scopeKey{}).(*RequestScope); ok {
		s.mu.Lock()
		s.endpoint = name
		s.mu.Unlock()
	}
}

// Endpoint is the last name a handler reported, "" when none was.
func (s *RequestScope) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoint
}
