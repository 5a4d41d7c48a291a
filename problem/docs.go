package problem

import (
	"fmt"
	"net/http"
	"strings"
)

// MarkdownTable is the README's table of every code, generated from the
// table above so the two cannot drift (a test compares them).
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| status | code | meaning | what to do |\n|---|---|---|---|\n")
	for _, in := range All() {
		fmt.Fprintf(&b, "| %d | [`%s`](%s) | %s | %s |\n", in.Status, in.Code, in.Code.Type(), in.Meaning, in.Action)
	}
	return b.String()
}

// MarkdownReference is docs/errors.md: one section per code, the page each
// problem's type URI names.
func MarkdownReference() string {
	var b strings.Builder
	b.WriteString("# Errors\n\n" +
		"<!-- Generated from problem/codes.go by `go test ./problem -update`; do not edit by hand. -->\n\n" +
		"Every error Veref answers is an RFC 9457 `application/problem+json` document:\n\n" +
		"```json\n" +
		`{"type":"https://docs.veref.work/errors/SCOPE_MISSING","title":"Forbidden","status":403,"code":"SCOPE_MISSING",` + "\n" +
		` "detail":"this API key lacks the scope for this operation; it needs candidates:read or candidates:write",` + "\n" +
		` "hint":"create a key with one of these scopes: candidates:read or candidates:write","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}` + "\n" +
		"```\n\n" +
		"- `type` is a stable URI per code: this page, at the code's section.\n" +
		"- `code` is stable: branch on it, never on `title` or `detail`.\n" +
		"- `status` always matches the HTTP status, and is decided by the code alone.\n" +
		"- `traceId` is also sent as the `X-Trace-Id` header; quote it when reporting a problem.\n" +
		"  Send a W3C `traceparent` header to choose it.\n" +
		"- `errors[]` locates invalid input: `body.<field>`, `query.<name>`, `path.<name>`,\n" +
		"  `header.<name>` on REST; `arguments.<field>` for MCP and the agent's tool calls.\n\n" +
		"MCP answers refusals before a tool runs as JSON-RPC errors whose `data` carries `code`, `type` and `traceId`;\n" +
		"a tool's own failure is a tool result with `isError: true` whose text starts with the code.\n\n")
	for _, in := range All() {
		fmt.Fprintf(&b, "## %s\n\n", in.Code)
		fmt.Fprintf(&b, "HTTP %d %s.\n\n%s\n\n**What to do:** %s\n\n", in.Status, http.StatusText(in.Status), in.Meaning, in.Action)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
