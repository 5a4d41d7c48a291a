// Package mcp exposes the Veref tool registry as a Model Context Protocol
// server: Streamable HTTP at /v1/api/mcp (mounted by api behind the same key
// guard as REST) and a stdio proxy for local clients that cannot send
// headers. It is an adapter only: every call goes through
// tools.Registry.Invoke, which checks scopes and writes the audit event.
//
// The HTTP endpoint is stateless. mcp-go mints no Mcp-Session-Id, and every
// POST is authenticated on its own by the guard from its own API key, so
// there is no session whose tenant, environment or scopes could differ from
// the key on the request in hand: a revoked key stops on its next request,
// a client cannot switch keys under an established session, and any
// instance behind a load balancer can answer any request. The price is no
// server-to-client stream (GET answers 405), which Veref's tools do not
// need: they neither sample nor elicit nor notify.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/cors"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/prompts"
	"github.com/verefwork/veref/tools"
)

// DefaultMaxBodyBytes bounds one JSON-RPC message; tool inputs are small.
const DefaultMaxBodyBytes = 1 << 20

// ServerName is the name the server reports in its initialize result.
const ServerName = "veref"

// Options configure the handler.
type Options struct {
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may call the endpoint. A request without an Origin header is allowed,
	// as non-browser clients send none; a request whose Origin is not listed
	// is refused with 403, which is what stops DNS-rebinding and cross-site
	// pages from driving the endpoint with a user's ambient credentials.
	// Loopback origins (localhost, 127.0.0.1, [::1]) are always allowed.
	AllowedOrigins []string
	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes when zero);
	// larger requests get 413 before anything is parsed.
	MaxBodyBytes int64
	// Version is reported as the server version (default "dev").
	Version string
	// Log receives mcp-go transport diagnostics; nil discards them.
	Log *slog.Logger
}

// NewHandler serves MCP Streamable HTTP over reg. It expects to run behind
// the API guard: the principal comes only from auth.FromContext.
func NewHandler(reg *tools.Registry, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Log == nil {
		opts.Log = discardLogger()
	}
	origins := newOriginSet(opts.AllowedOrigins)

	srv := server.NewMCPServer(ServerName, opts.Version,
		server.WithTitle("Veref"),
		server.WithInstructions(prompts.MCPInstructions),
		server.WithToolCapabilities(false), // a key's tools never change: scopes are fixed at creation
		server.WithRecovery(),
		// The filter runs for tools/list and again for tools/call, and a
		// filtered tool is refused with the very error of a name that does
		// not exist, so a key cannot learn which tools it lacks.
		server.WithToolFilter(func(ctx context.Context, in []mcp.Tool) []mcp.Tool {
			p, ok := auth.FromContext(ctx)
			if !ok {
				return nil
			}
			out := in[:0:0]
			for _, t := range in {
				if reg.Permits(p, t.Name) {
					out = append(out, t)
				}
			}
			return out
		}),
	)
	for _, t := range reg.Tools() {
		srv.AddTool(toolOf(t), callHandler(reg, t))
	}

	streamable := server.NewStreamableHTTPServer(srv,
		server.WithStateLess(true),
		server.WithDisableStreaming(true),
		server.WithStreamableHTTPLogger(opts.Log),
		// mcp-go's loopback Host check guards local servers; this one is
		// remote and usually sits behind a proxy on the same host, where the
		// check would refuse every request. The Origin allow-list below is
		// the DNS-rebinding defence instead.
		server.WithDisableLocalhostProtection(true),
	)
	return &handler{mcp: streamable, reg: reg, origins: origins, maxBody: opts.MaxBodyBytes}
}

type handler struct {
	mcp      http.Handler
	noDirect bool // tests: every message through mcp-go, to compare
	reg      *tools.Registry
	origins  originSet
	maxBody  int64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if origin := r.Header.Get("Origin"); origin != "" && !h.origins.allowed(origin) {
		tools.ReportEndpoint(ctx, "mcp:origin-refused")
		writeRPCError(w, mcp.INVALID_REQUEST, "origin not allowed",
			problem.OriginNotAllowed, "this origin is not on the server's MCP allow-list")
		return
	}
	// The guard has authenticated already; this only catches a mounting
	// mistake that would otherwise run tools for nobody.
	if _, ok := auth.FromContext(r.Context()); !ok {
		tools.ReportEndpoint(ctx, "mcp:unauthenticated")
		writeRPCError(w, mcp.INVALID_REQUEST, "authentication required",
			problem.AuthMissing, "send an API key as Authorization: Bearer vrf_…")
		return
	}
	if r.Method != http.MethodPost {
		// Stateless: no server stream to GET, no session to DELETE.
		tools.ReportEndpoint(ctx, "mcp:"+r.Method)
		w.Header().Set("Allow", http.MethodPost)
		writeRPCError(w, mcp.INVALID_REQUEST, r.Method+" is not allowed on the MCP endpoint",
			problem.MethodNotAllowed, "send each JSON-RPC message with POST")
		return
	}

	if r.ContentLength > h.maxBody {
		tools.ReportEndpoint(ctx, "mcp:too-large")
		writeTooLarge(w, h.maxBody)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			tools.ReportEndpoint(ctx, "mcp:too-large")
			writeTooLarge(w, h.maxBody)
			return
		}
		tools.ReportEndpoint(ctx, "mcp:unreadable")
		writeRPCError(w, mcp.PARSE_ERROR, "could not read the request body", problem.InvalidInput, "")
		return
	}
	msg, parsed := parseMessage(body)
	tools.ReportEndpoint(ctx, h.endpoint(msg, parsed))
	if h.refuseMalformed(r.Context(), w, body, &msg, parsed) {
		return
	}
	p, _ := auth.FromContext(r.Context())
	if parsed && msg.Method == string(mcp.MethodNotificationCancelled) {
		// mcp-go finds the call to cancel by session id and JSON-RPC id;
		// stateless, session ids are empty or whatever a client claims, so
		// one key could cancel another tenant's call. A call here is
		// cancelled by closing its own request instead.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if parsed {
		h.auditRefusal(r.Context(), &msg, p)
		if h.direct(w, r, &msg, p) {
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	h.mcp.ServeHTTP(w, r)
}

// refuseMalformed answers what mcp-go would mishandle: a batch (which this
// server does not take) and text its decoder would silently mangle. The
// arguments of a tools/call are left to the registry, which refuses such
// text as a tool error, audited like any other.
func (h *handler) refuseMalformed(ctx context.Context, w http.ResponseWriter, body []byte, msg *message, parsed bool) bool {
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		writeRPCError(w, mcp.INVALID_REQUEST, "JSON-RPC batches are not supported",
			problem.InvalidInput, "send one JSON-RPC message per request")
		return true
	}
	bad := tools.CheckText(body, "")
	if bad == nil {
		return false
	}
	loc := strings.TrimPrefix(bad.Errors[0].Location, ".")
	if strings.HasPrefix(loc, "params.arguments.") || strings.HasPrefix(loc, "params.arguments[") {
		return false
	}
	if parsed && msg.Method == string(mcp.MethodToolsCall) {
		// Refused before any tool runs, yet a tools/call all the same: it
		// goes on the trail like every other.
		p, _ := auth.FromContext(ctx)
		h.reg.Refuse(ctx, tools.Call{Principal: p, Surface: tools.SurfaceMCP, TraceID: tools.RequestMetaFrom(ctx).TraceID,
			Tool: msg.Params.Name, Input: msg.Params.Arguments}, &tools.Error{Code: problem.InvalidInput, Message: loc + ": " + bad.Errors[0].Message})
	}
	writeRPCError(w, mcp.INVALID_PARAMS, loc+": "+bad.Errors[0].Message, problem.InvalidInput, "")
	return true
}

// auditRefusal records a tools/call that the tool filter will refuse (a tool
// the key's scopes hide, or none of that name). mcp-go answers it before any
// handler runs, so the refusal goes through Registry.Invoke here: the registry
// stays the one place that checks scopes and writes audit rows, and the
// caller still gets the same answer as for a tool that does not exist.
func (h *handler) auditRefusal(ctx context.Context, msg *message, p auth.Principal) {
	if msg.Method != string(mcp.MethodToolsCall) || h.reg.Permits(p, msg.Params.Name) {
		return
	}
	_, _ = h.reg.Invoke(ctx, tools.Call{Principal: p, Surface: tools.SurfaceMCP,
		TraceID: tools.RequestMetaFrom(ctx).TraceID, Tool: msg.Params.Name, Input: msg.Params.Arguments})
}

// endpoint names the usage row after the JSON-RPC method, and after the tool
// for tools/call, so usage can be read per tool. Names come from the client,
// so only registered tool names and method-shaped strings are kept.
func (h *handler) endpoint(msg message, parsed bool) string {
	switch {
	case !parsed:
		return "mcp:invalid"
	case msg.Method == "":
		return "mcp:response"
	case !methodShaped(msg.Method):
		return "mcp:invalid"
	case msg.Method == string(mcp.MethodToolsCall):
		if _, ok := h.reg.Lookup(msg.Params.Name); ok {
			return "mcp:tools/call:" + msg.Params.Name
		}
		return "mcp:tools/call:unknown"
	default:
		return "mcp:" + msg.Method
	}
}

func methodShaped(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/_-.", c)) {
			return false
		}
	}
	return true
}

// originSet is the allow-list of browser origins.
type originSet map[string]bool

func newOriginSet(list []string) originSet {
	set := originSet{}
	for _, o := range list {
		set[normalizeOrigin(o)] = true
	}
	return set
}

// allowed admits listed origins and loopback ones. A rebinding attack runs
// on a page of the attacker's own name, so its Origin can never be loopback;
// local tools such as the MCP Inspector are, and still need a key.
func (set originSet) allowed(origin string) bool {
	if set[normalizeOrigin(origin)] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// normalizeOrigin lowercases and drops a default port, so
// https://app.example.com:443 is https://app.example.com.
func normalizeOrigin(o string) string {
	o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
	o = strings.TrimSuffix(o, map[bool]string{true: ":443", false: ":80"}[strings.HasPrefix(o, "https://")])
	return o
}

// Front is what must run before authentication on the MCP endpoint: a
// foreign Origin is refused with 403 before a key is even looked at, and an
// allowed one gets CORS headers and its preflight answered (by rs/cors),
// since a browser page must send Authorization and so always preflights.
func Front(opts Options) func(http.Handler) http.Handler {
	origins := newOriginSet(opts.AllowedOrigins)
	c := cors.New(cors.Options{
		AllowOriginFunc: origins.allowed,
		AllowedMethods:  []string{http.MethodPost, http.MethodGet, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "X-Api-Key", "Content-Type", "Accept",
			"Mcp-Protocol-Version", "Mcp-Session-Id", "Last-Event-ID", "Traceparent", "Tracestate"},
		ExposedHeaders:       []string{"WWW-Authenticate", "X-Trace-Id", "Mcp-Session-Id", "Mcp-Protocol-Version"},
		MaxAge:               600,
		OptionsSuccessStatus: http.StatusNoContent,
	})
	return func(next http.Handler) http.Handler {
		withCORS := c.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// rs/cors only withholds headers from a foreign origin; the
			// request itself must not run, or a rebinding page could still
			// cause effects it cannot read.
			if origin := r.Header.Get("Origin"); origin != "" && !origins.allowed(origin) {
				writeRPCError(w, mcp.INVALID_REQUEST, "origin not allowed",
					problem.OriginNotAllowed, "this origin is not on the server's MCP allow-list (VEREF_MCP_ALLOWED_ORIGINS)")
				return
			}
			withCORS.ServeHTTP(w, r)
		})
	}
}

func writeTooLarge(w http.ResponseWriter, limit int64) {
	writeRPCError(w, mcp.INVALID_REQUEST, "request body too large",
		problem.TooLarge, fmt.Sprintf("a request body may be at most %d bytes", limit))
}

// writeRPCError answers a request refused before it reached the MCP server.
// The body is a JSON-RPC error without an id, as the transport spec allows,
// carrying Veref's stable code in data.
func writeRPCError(w http.ResponseWriter, rpcCode int, msg string, code problem.Code, hint string) {
	data := map[string]string{"code": string(code), "type": code.Type()}
	if hint != "" {
		data["hint"] = hint
	}
	if trace := w.Header().Get("X-Trace-Id"); trace != "" {
		data["traceId"] = trace
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code.Status())
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": mcp.JSONRPC_VERSION,
		"id":      nil,
		"error":   map[string]any{"code": rpcCode, "message": msg, "data": data},
	})
}

// toolOf describes a registry tool for MCP. Schemas are the registry's, so
// the MCP contract is the REST contract.
func toolOf(t *tools.Tool) mcp.Tool {
	in, err := json.Marshal(t.InputSchema)
	if err != nil {
		panic(fmt.Sprintf("mcp: input schema of %s: %v", t.Name, err))
	}
	out, err := json.Marshal(outputSchema(t))
	if err != nil {
		panic(fmt.Sprintf("mcp: output schema of %s: %v", t.Name, err))
	}
	return mcp.Tool{
		Name:            t.Name,
		Title:           t.Title,
		Description:     t.Documented(),
		RawInputSchema:  in,
		RawOutputSchema: out,
		Annotations: mcp.ToolAnnotation{
			Title:           t.Title,
			ReadOnlyHint:    mcp.ToBoolPtr(t.ReadOnly),
			DestructiveHint: mcp.ToBoolPtr(t.Destructive),
			IdempotentHint:  mcp.ToBoolPtr(t.Idempotent),
			OpenWorldHint:   mcp.ToBoolPtr(t.OpenWorld),
		},
	}
}

// MCP requires structured content, and so the output schema, to be an
// object; an output of any other shape is wrapped as {"result": …}.
func wrapsOutput(t *tools.Tool) bool { return t.OutputSchema["type"] != "object" }

func outputSchema(t *tools.Tool) map[string]any {
	if !wrapsOutput(t) {
		return t.OutputSchema
	}
	return map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"result": t.OutputSchema},
		"required":             []string{"result"},
		"additionalProperties": false,
	}
}

func callHandler(reg *tools.Registry, t *tools.Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := auth.FromContext(ctx)
		if !ok {
			return nil, errors.New("no authenticated principal")
		}
		input := req.Params.RawArguments
		if len(input) == 0 && req.Params.Arguments != nil {
			b, err := json.Marshal(req.Params.Arguments)
			if err != nil {
				return nil, fmt.Errorf("arguments: %w", err)
			}
			input = b
		}
		return invoke(ctx, reg, p, t, input).result(t), nil
	}
}

func errorResult(e *tools.Error) *mcp.CallToolResult {
	var b strings.Builder
	b.WriteString(string(e.Code) + ": " + e.Message)
	if e.Field != "" {
		b.WriteString("\nfield: " + e.Field)
	}
	for _, fe := range e.Errors {
		if fe.Location != "" {
			b.WriteString("\n- " + fe.Location + ": " + fe.Message)
		} else {
			b.WriteString("\n- " + fe.Message)
		}
	}
	if e.Hint != "" {
		b.WriteString("\nhint: " + e.Hint)
	}
	return &mcp.CallToolResult{
		Content: []mcp.Content{mcp.NewTextContent(b.String())},
		IsError: true,
	}
}
