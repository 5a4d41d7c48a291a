package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/tools"
)

// message is a JSON-RPC message read once, for the usage row's name, the
// audit of a refused call and the direct path below. Fields other than
// method and name stay raw, so a message mcp-go would take is never refused
// here for a field's type.
type message struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
	Params  struct {
		Name           string          `json:"name"`
		Arguments      json.RawMessage `json:"arguments"`
		Meta           json.RawMessage `json:"_meta"`
		Task           json.RawMessage `json:"task"`
		InputResponses json.RawMessage `json:"inputResponses"`
		RequestState   json.RawMessage `json:"requestState"`
	} `json:"params"`
}

// parseMessage reads body; ok is false when it is not a JSON-RPC object.
func parseMessage(body []byte) (msg message, ok bool) {
	return msg, json.Unmarshal(body, &msg) == nil
}

// direct answers a plain tools/call itself and reports whether it did.
//
// mcp-go's transport spends more on a call than the read it carries: per
// request it builds a session, starts a goroutine with its channels, parses
// the body five more times and marshals the result through maps. For the
// one shape that is nearly all of the traffic (a legacy-era call of a tool
// the key may use, with no _meta, task or round-trip state) this runs the
// very handler mcp-go would and writes the answer mcp-go would write, as
// TestDirectCallsAnswerAsMCPGoDoes checks byte for byte. Anything else
// (initialize, tools/list, a hidden tool, a modern-era or unusual message)
// goes to mcp-go unchanged.
func (h *handler) direct(w http.ResponseWriter, r *http.Request, msg *message, p auth.Principal) bool {
	if h.noDirect || msg.Method != string(mcp.MethodToolsCall) || !h.plain(r, msg) {
		return false
	}
	t, ok := h.reg.Lookup(msg.Params.Name)
	if !ok || !h.reg.Permits(p, t.Name) {
		return false
	}
	id, ok := requestID(msg.ID)
	if !ok {
		return false
	}
	ctx := r.Context()
	var out []byte
	func() {
		defer func() {
			// As mcp-go's WithRecovery answers a panicking handler.
			if v := recover(); v != nil {
				out = encode(mcp.NewJSONRPCError(mcp.NewRequestId(id), mcp.INTERNAL_ERROR,
					fmt.Sprintf("panic recovered in %s tool handler: %v", t.Name, v), nil))
			}
		}()
		out = callResponse(id, t, invoke(ctx, h.reg, p, t, msg.Params.Arguments))
	}()
	// A length lets net/http send the body as is: past its 2 KiB buffer
	// it would switch to chunked encoding.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return true
}

// plain reports whether msg is an ordinary legacy-era request that mcp-go
// would hand straight to the tool: JSON content, a supported pre-2026
// protocol version (or none), and none of the parameters that change how a
// call runs.
func (h *handler) plain(r *http.Request, msg *message) bool {
	if r.Header.Get("Content-Type") != "application/json" {
		return false
	}
	if v := r.Header.Get(mcp.HeaderProtocolVersion); v != "" && (!mcp.IsValidProtocolVersion(v) || mcp.IsModernProtocol(v)) {
		return false
	}
	pa := &msg.Params
	return string(msg.JSONRPC) == `"`+mcp.JSONRPC_VERSION+`"` && msg.Result == nil && msg.Error == nil &&
		pa.Meta == nil && pa.Task == nil && pa.InputResponses == nil && pa.RequestState == nil
}

// requestID decodes a string or number id as mcp-go does (numbers become
// float64), so it is echoed as mcp-go echoes it; other ids are left to it.
func requestID(raw json.RawMessage) (any, bool) {
	var id any
	if len(raw) == 0 || json.Unmarshal(raw, &id) != nil {
		return nil, false
	}
	switch id.(type) {
	case string, float64:
		return id, true
	}
	return nil, false
}

// callOutcome is a finished call: its result, or the tool error to show.
type callOutcome struct {
	res tools.Result
	err *tools.Error
}

// invoke runs one MCP tool call through the registry, which checks scopes,
// validates the arguments and writes the audit row.
func invoke(ctx context.Context, reg *tools.Registry, p auth.Principal, t *tools.Tool, args json.RawMessage) callOutcome {
	if bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		args = nil
	}
	res, err := reg.Invoke(ctx, tools.Call{
		Principal: p,
		Surface:   tools.SurfaceMCP,
		TraceID:   tools.RequestMetaFrom(ctx).TraceID,
		Tool:      t.Name,
		Input:     args,
	})
	if err != nil {
		// Every tools.Error is about the call, not the protocol, so the
		// model sees it and can correct itself (MCP "tool execution
		// errors"); AsError has already hidden internals.
		return callOutcome{err: tools.AsError(err)}
	}
	return callOutcome{res: res}
}

// result is the outcome as mcp-go's CallToolResult: the output both as
// text, for clients that read only content, and as structured content.
func (o callOutcome) result(t *tools.Tool) *mcp.CallToolResult {
	if o.err != nil {
		return errorResult(o.err)
	}
	var structured any = json.RawMessage(o.res.JSON)
	if wrapsOutput(t) {
		structured = map[string]any{"result": json.RawMessage(o.res.JSON)}
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(string(o.res.JSON))},
		StructuredContent: structured,
	}
}

// callResponse is the JSON-RPC response mcp-go writes for o, one line of
// JSON. A successful result is written directly: its JSON came from
// json.Marshal, so it is compact and HTML-escaped already, and marshalling
// it again through mcp-go's maps would only copy and re-check it. Errors
// and replayed results, rare, take mcp-go's own encoding.
func callResponse(id any, t *tools.Tool, o callOutcome) []byte {
	if o.err != nil || o.res.Replayed {
		return encode(mcp.NewJSONRPCResultResponse(mcp.NewRequestId(id), o.result(t)))
	}
	idJSON, _ := json.Marshal(id)
	b := make([]byte, 0, 112+len(idJSON)+2*len(o.res.JSON))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, idJSON...)
	b = append(b, `,"result":{"content":[{"type":"text","text":`...)
	b = appendQuoted(b, o.res.JSON)
	b = append(b, `}],"structuredContent":`...)
	if wrapsOutput(t) {
		b = append(b, `{"result":`...)
		b = append(b, o.res.JSON...)
		b = append(b, '}')
	} else {
		b = append(b, o.res.JSON...)
	}
	return append(b, "}}\n"...)
}

// appendQuoted appends js, compact JSON from json.Marshal, as a JSON
// string. Such JSON is valid UTF-8 with every control character already
// escaped, so only quotes and backslashes need one more backslash: the
// bytes json.Marshal(string(js)) gives, without its copy and scan.
func appendQuoted(b, js []byte) []byte {
	b = append(b, '"')
	from := 0
	for i, c := range js {
		if c == '"' || c == '\\' {
			b = append(b, js[from:i]...)
			b = append(b, '\\')
			from = i
		}
	}
	b = append(b, js[from:]...)
	return append(b, '"')
}

// encode writes v as mcp-go's transport does (json.Encoder, one line).
func encode(v any) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"the response could not be encoded"}}` + "\n")
	}
	return buf.Bytes()
}
