// Package api assembles Veref's HTTP server: the REST adapter over the tool
// registry, authentication and usage logging, key management for
// recruiters, OpenAPI and docs, and the mount points of MCP and the agent.
package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// Options wires a Server. Store, Registry, Hasher and Usage are required.
type Options struct {
	Store    store.Store
	Registry *tools.Registry
	Hasher   *auth.Hasher
	Usage    *UsageWriter
	Log      zerolog.Logger
	Now      func() time.Time
	Version  string
	// KeyCache, when set, spares warm keys the storage lookup. The caller
	// must feed it from the store (store.KeyWatcher) or it stays bypassed.
	KeyCache *auth.KeyCache

	// Clerk verifies recruiters' session JWTs for key management; nil
	// leaves those routes answering 503 with what to configure.
	Clerk *ClerkVerifier
	// MaxActiveKeys caps a tenant's active keys (default 100).
	MaxActiveKeys int
	// AppURL is the recruiter console (VEREF_APP_URL, default the public
	// URL + /app); `veref login` sends the user to AppURL/cli.
	AppURL string
	// AuthTimeout bounds the key lookup of every request (default 2s).
	AuthTimeout time.Duration
	// Limits: rate limits, allowlists, auth-failure throttling and the
	// agent's token budget; zero values take the defaults.
	Limits Limits
	// PublicURL (VEREF_PUBLIC_URL), when set, is the base of every URL the
	// server advertises; otherwise it is built from the request.
	PublicURL string

	// MCP and Agent are mounted behind the same guard as REST when set.
	MCP   http.Handler
	Agent http.Handler
	// MCPFront runs before the guard on the MCP endpoint: the Origin check
	// and CORS preflight, which must not wait for (or need) a key.
	MCPFront func(http.Handler) http.Handler
	// Tracer makes the spans of requests and what they call; nil makes
	// trace ids (taken from an incoming traceparent when there is one)
	// without recording anything.
	Tracer trace.TracerProvider
	// Public holds routes outside /v1/api that carry their own credentials
	// (referee invitations, share links); mounted as given.
	Public map[string]http.Handler
	// Repeats de-duplicates the error lines every failing request writes
	// while storage is down (default: one with a 10s interval on Now,
	// whose counts are written lazily; serve runs it to count on time).
	Repeats *logdedup.Deduper
}

// Server is the whole HTTP surface.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	api     huma.API
	reg     *tools.Registry
	guard   *Guard
	log     zerolog.Logger
	now     func() time.Time
	keys    *KeyService
	handler http.Handler
}

// New builds the server and mounts every tool of the registry.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxActiveKeys <= 0 {
		o.MaxActiveKeys = 100
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Repeats == nil {
		o.Repeats = logdedup.New(0, o.Now)
	}
	s := &Server{opts: o, mux: http.NewServeMux(), reg: o.Registry, log: o.Log, now: o.Now}
	s.guard = &Guard{
		Authn:  &auth.Authenticator{Keys: o.Store, Hasher: o.Hasher, Now: o.Now, Cache: o.KeyCache, LookupTimeout: o.AuthTimeout},
		Hasher: o.Hasher, Usage: o.Usage, Log: o.Log, Repeats: o.Repeats, Now: o.Now,
		ResourceMetadata: func(r *http.Request) string { return s.baseURL(r) + protectedResourcePath },
		Limits:           o.Limits.withDefaults(o.Now), Audit: o.Store,
	}

	cfg := huma.DefaultConfig("Veref API", o.Version)
	cfg.CreateHooks = nil // no $schema links: responses are plain JSON documents
	cfg.SchemasPath = ""
	cfg.OpenAPIPath = "/openapi"
	cfg.DocsPath = "" // served from embedded assets by mountDocs
	cfg.Info.Description = "Machine-to-machine access to Veref reference checks. Authenticate with an API key " +
		"(`Authorization: Bearer vrf_…` or `x-api-key: vrf_…`). Keys are scoped; each operation lists the scopes that allow it. " +
		"Errors are RFC 9457 problem+json with a stable `code`."
	describeDocument(cfg.OpenAPI, integrationTags)
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearerAuth": {Type: "http", Scheme: "bearer", BearerFormat: "vrf_<env>_<prefix>_<secret>",
			Description: "A Veref API key sent as a bearer token."},
		"apiKeyAuth": {Type: "apiKey", In: "header", Name: "x-api-key",
			Description: "A Veref API key sent in the x-api-key header."},
	}
	s.api = humago.New(s.mux, cfg)
	for _, t := range o.Registry.Tools() {
		s.mountTool(t)
	}

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mountDocs()
	s.mountKeyManagement()
	s.mountCLISessions()
	s.mux.Handle("POST /v1/api/me/revoke", s.guard.Wrap(tools.SurfaceREST, http.HandlerFunc(s.revokeSelf)))
	s.api.OpenAPI().AddOperation(s.revokeSelfOperation())
	if o.MCP != nil {
		h := s.guard.Wrap(tools.SurfaceMCP, o.MCP)
		if o.MCPFront != nil {
			h = o.MCPFront(h)
		}
		s.mux.Handle("/v1/api/mcp", h)
		s.mux.HandleFunc("GET "+protectedResourcePath, s.protectedResource)
	}
	if o.Agent != nil {
		s.mux.Handle("POST /v1/api/agent", s.guard.Wrap(tools.SurfaceAgent, o.Agent))
		s.api.OpenAPI().AddOperation(s.agentOperation())
	}
	for pattern, h := range o.Public {
		s.mux.Handle(pattern, h)
	}
	documentLimits(s.api.OpenAPI())
	addRequestExamples(s.api.OpenAPI())
	// Anything else under /v1/api is answered in our problem shape after
	// authentication, so unknown paths do not reveal which exist; anything
	// else at all, without it.
	s.mux.Handle(apiCatchAll, s.guard.Wrap(tools.SurfaceREST, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, tools.RequestMetaFrom(r.Context()).TraceID, s.noRoute(w, r))
	})))
	s.mux.HandleFunc(rootCatchAll, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, requestTraceID(r), s.noRoute(w, r))
	})
	s.handler = accessLog(s.log, s.now, o.Tracer == nil, s.mux)
	if o.Tracer != nil {
		s.handler = instrument(s.handler, o.Tracer)
	}
	return s
}

const (
	apiCatchAll  = "/v1/api/"
	rootCatchAll = "/"
)

// noRoute explains a request no route took: 405 with Allow when the path
// exists for other methods, a 404 naming the canonical path when only a
// trailing slash is wrong, else a plain 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) *Problem {
	path := r.URL.Path
	if allow := s.methodsAt(path); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return problem.Newf(problem.MethodNotAllowed, "%s is not allowed on %s", r.Method, path).
			WithHint("use " + strings.Join(allow, " or "))
	}
	if trimmed := strings.TrimRight(path, "/"); trimmed != path && trimmed != "" && len(s.methodsAt(trimmed)) > 0 {
		return problem.Newf(problem.NotFound, "no operation at %s %s", r.Method, path).
			WithHint("drop the trailing slash: the path is " + trimmed)
	}
	return problem.Newf(problem.NotFound, "no operation at %s %s", r.Method, path).
		WithHint("see /openapi.json for the operations")
}

// methodsAt lists the methods some route serves at path.
func (s *Server) methodsAt(path string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: &url.URL{Path: path}, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != apiCatchAll && pattern != rootCatchAll {
			out = append(out, m)
		}
	}
	return out
}

// instrument starts the request's span, from an incoming traceparent when
// there is one; everything inside (access log, metrics, handlers) takes the
// trace id from it. Without a tracer the access log makes the ids itself
// (telemetry.Untraced): otelhttp's per-request wrapping and attributes cost
// more than the authenticated request itself.
func instrument(next http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(next, "veref",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(telemetry.Propagator),
		// Until the mux has matched, the method is all that is known;
		// otelhttp renames the span to the pattern afterwards.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
	)
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// OpenAPI returns the document served at /openapi.json.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := s.opts.Store.Ping(ctx); err != nil {
		s.opts.Repeats.Warn(s.log, "readiness check failed", err).Send()
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","detail":"storage is not reachable"}`))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

const protectedResourcePath = "/.well-known/oauth-protected-resource/v1/api/mcp"

// protectedResource is RFC 9728 metadata for the MCP endpoint. Veref keys are
// issued out of band, so no authorization server is listed; the document
// still tells clients how to present a bearer token.
func (s *Server) protectedResource(w http.ResponseWriter, r *http.Request) {
	scopes := make([]string, 0, len(auth.Catalogue))
	for _, c := range auth.Catalogue {
		scopes = append(scopes, string(c.Scope))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncode(w, map[string]any{
		"resource":                 s.baseURL(r) + "/v1/api/mcp",
		"authorization_servers":    []string{},
		"bearer_methods_supported": []string{"header"},
		"scopes_supported":         scopes,
		"resource_name":            "Veref",
		"resource_documentation":   s.baseURL(r) + "/docs",
	})
}

// baseURL is where clients reach this server: VEREF_PUBLIC_URL when set,
// else the request's own scheme and host, taking forwarded headers only
// from trusted proxies (anyone else could point the advertised URLs of a
// 401 at a host of their choosing).
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/")
	}
	return s.guard.Limits.ClientIP.Scheme(r) + "://" + s.guard.Limits.ClientIP.Host(r)
}
