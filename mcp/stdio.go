package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// EndpointPath is where a Veref server serves MCP.
const EndpointPath = "/v1/api/mcp"

// Remote is the Veref server a stdio proxy forwards to.
type Remote struct {
	// BaseURL is the server's origin, e.g. https://api.veref.work; the MCP
	// endpoint path is appended.
	BaseURL string
	// APIKey is sent as a bearer token on every request and nowhere else.
	APIKey string
	// HTTPClient defaults to one with a 2-minute timeout.
	HTTPClient *http.Client
	// Version is the proxy's own version, reported to the local client.
	Version string
	// Log receives diagnostics (stderr in the CLI); nil discards them.
	Log io.Writer
}

// String keeps the key out of anything that prints a Remote.
func (r Remote) String() string { return "Remote{" + r.BaseURL + ", key redacted}" }

// GoString keeps the key out of %#v.
func (r Remote) GoString() string { return r.String() }

// Endpoint is the remote MCP URL.
func (r Remote) Endpoint() string { return strings.TrimRight(r.BaseURL, "/") + EndpointPath }

// ServeStdio runs an MCP server on in/out for a local client (one launched as
// a subprocess, which cannot add headers) and forwards it to the remote
// Veref server over Streamable HTTP with the API key in the Authorization
// header. The tool menu is listed from the remote once, at start: a key's
// scopes never change, so neither does its menu. The remote still decides
// every call; the proxy holds no authority of its own.
func ServeStdio(ctx context.Context, in io.Reader, out io.Writer, remote Remote) error {
	if remote.APIKey == "" {
		return errors.New("no API key")
	}
	if err := CheckAPIURL(remote.BaseURL); err != nil {
		return err
	}
	if remote.Version == "" {
		remote.Version = "dev"
	}
	if remote.HTTPClient == nil {
		remote.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	logw := remote.Log
	if logw == nil {
		logw = io.Discard
	}

	up, err := connect(ctx, remote)
	if err != nil {
		return err
	}
	defer up.c.Close()

	srv := server.NewMCPServer(up.info.ServerInfo.Name, remote.Version,
		server.WithTitle(up.info.ServerInfo.Title),
		server.WithInstructions(up.info.Instructions),
		server.WithToolCapabilities(false),
		server.WithRecovery(),
	)
	var inflight atomic.Int64
	for _, t := range up.tools {
		srv.AddTool(t, counted(&inflight, forward(up.c)))
	}
	stdio := server.NewStdioServer(srv)
	stdio.SetErrorLogger(log.New(logw, "veref mcp: ", 0))
	err = stdio.Listen(ctx, &drainOnEOF{r: in, inflight: &inflight, ctx: ctx}, out)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// CheckAPIURL refuses URLs that would carry an API key in the clear: plain
// http is only allowed to loopback.
func CheckAPIURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("API URL %q is not an http(s) URL", raw)
	}
	if u.Scheme == "http" {
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
		default:
			return fmt.Errorf("API URL %q is plain http; the API key is only sent over https (or http to localhost)", raw)
		}
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type upstream struct {
	c     *client.Client
	info  *mcp.InitializeResult
	tools []mcp.Tool
}

func connect(ctx context.Context, remote Remote) (*upstream, error) {
	endpoint := remote.Endpoint()
	tr, err := transport.NewStreamableHTTP(endpoint,
		transport.WithHTTPBasicClient(remote.HTTPClient),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + remote.APIKey}),
		transport.WithHTTPLogger(discardLogger()),
	)
	if err != nil {
		return nil, fmt.Errorf("MCP endpoint %s: %w", endpoint, err)
	}
	c := client.NewClient(tr)
	fail := func(what string, err error) (*upstream, error) {
		_ = c.Close()
		var authErr *transport.AuthorizationRequiredError
		if errors.As(err, &authErr) {
			return nil, fmt.Errorf("%s at %s: the API key was refused (unknown, revoked or expired); check VEREF_API_KEY", what, endpoint)
		}
		return nil, fmt.Errorf("%s at %s: %w", what, endpoint, err)
	}
	if err := c.Start(ctx); err != nil {
		return fail("connecting", err)
	}
	hello := mcp.InitializeRequest{}
	hello.Params.ClientInfo = mcp.Implementation{Name: "veref-mcp-stdio", Version: remote.Version}
	info, err := c.Initialize(ctx, hello)
	if err != nil {
		return fail("initializing", err)
	}
	var all []mcp.Tool
	req := mcp.ListToolsRequest{}
	for {
		page, err := c.ListTools(ctx, req)
		if err != nil {
			return fail("listing tools", err)
		}
		all = append(all, page.Tools...)
		if page.NextCursor == "" {
			break
		}
		req.Params.Cursor = page.NextCursor
	}
	return &upstream{c: c, info: info, tools: all}, nil
}

// counted keeps count of calls under way, for drainOnEOF.
func counted(n *atomic.Int64, h server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		n.Add(1)
		defer n.Add(-1)
		return h(ctx, req)
	}
}

// drainOnEOF holds back the end of input until the calls already read have
// been answered. mcp-go cancels every call under way when input ends, so a
// client that pipes its requests and closes stdin (a script, a one-shot
// invocation) would otherwise get "context canceled" instead of results.
type drainOnEOF struct {
	r        io.Reader
	inflight *atomic.Int64
	ctx      context.Context
	last     byte // the last byte read, to end an unterminated final line
}

func (d *drainOnEOF) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if n > 0 {
		d.last = p[n-1]
	}
	if errors.Is(err, io.EOF) && n == 0 && d.last != 0 && d.last != '\n' && len(p) > 0 {
		// A last message without its newline would be dropped unread.
		p[0], d.last = '\n', '\n'
		return 1, nil
	}
	if errors.Is(err, io.EOF) {
		// The last lines read may not have reached a handler yet.
		for quiet := 0; quiet < 5 && d.ctx.Err() == nil; {
			time.Sleep(20 * time.Millisecond)
			if d.inflight.Load() == 0 {
				quiet++
			} else {
				quiet = 0
			}
		}
	}
	return n, err
}

// forward relays one call. The remote's answer, tool error or not, goes back
// unchanged; a refused key becomes a tool error the model can report, and
// any other failure to reach the remote a protocol error.
func forward(c *client.Client) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		up := mcp.CallToolRequest{}
		up.Params.Name = req.Params.Name
		up.Params.Arguments = req.Params.Arguments
		if len(req.Params.RawArguments) > 0 {
			up.Params.Arguments = req.Params.RawArguments
		}
		res, err := c.CallTool(ctx, up)
		if err != nil {
			var authErr *transport.AuthorizationRequiredError
			if errors.As(err, &authErr) {
				return errorText("AUTH_REFUSED: the Veref server refused the API key (revoked, expired or unknown); the user must set a valid VEREF_API_KEY and restart"), nil
			}
			return nil, err
		}
		return res, nil
	}
}

func errorText(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(s)}, IsError: true}
}
