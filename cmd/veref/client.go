package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/problem"
)

// apiClient calls the REST API with the user's key. The key is read from
// the environment only, never a flag, so it stays out of shell history.
type apiClient struct {
	base   string
	key    string
	source string // where the key came from: env, keychain or file
	http   *http.Client
}

func newAPIClient(apiURL string, getenv func(string) string) (*apiClient, error) {
	t, err := resolveTarget(apiURL, getenv)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: t.base, key: t.key, source: t.source, http: newHTTPClient()}, nil
}

// apiTarget is resolveTarget for callers that need only the URL and key.
func apiTarget(flagURL string, getenv func(string) string) (base, key string, err error) {
	t, err := resolveTarget(flagURL, getenv)
	return t.base, t.key, err
}

// target is where a client command sends which key.
type target struct {
	base, key, source string
}

// apiBase is the API URL from the flag, else VEREF_API_URL, else the
// default; never plain http to a remote host, which would send the key in clear.
func apiBase(flagURL string, getenv func(string) string) (string, error) {
	base := strings.TrimSpace(flagURL)
	if base == "" {
		base = strings.TrimSpace(getenv("VEREF_API_URL"))
	}
	if base == "" {
		base = defaultAPIURL
	}
	if err := vmcp.CheckAPIURL(base); err != nil {
		return "", err
	}
	return strings.TrimRight(base, "/"), nil
}

// resolveTarget is where every client command (REST, ask, mcp) sends a
// key, and which: VEREF_API_KEY, else the key veref login stored for that
// URL in the credential store, else in the opted-in file. Keys never come
// from a flag, so they stay out of shell history.
func resolveTarget(flagURL string, getenv func(string) string) (target, error) {
	base, err := apiBase(flagURL, getenv)
	if err != nil {
		return target{}, err
	}
	t := target{base: base, key: strings.TrimSpace(getenv("VEREF_API_KEY")), source: sourceEnv}
	if t.key == "" {
		if t.key, t.source, err = storedCredential(base, getenv); err != nil {
			return target{}, err
		}
	}
	if t.key == "" {
		return target{}, authError{"not logged in to " + base + ": run veref login, or export VEREF_API_KEY=vrf_… (VEREF_API_KEY is not set; keys come from veref serve --dev, veref admin keys create, or the console)"}
	}
	if err := validKey(t.key, t.source); err != nil {
		return target{}, err
	}
	return t, nil
}

// cliProblem is the server's problem document as an error, printed as one
// line with its code and the trace id to quote.
type cliProblem struct{ *problem.Problem }

func (p cliProblem) Error() string { return p.Line() }

// problemFrom reads an error response: problem+json when the server sent
// it, else the status and the start of the body.
func problemFrom(status int, base string, b []byte) error {
	if p, err := problem.Decode(b, status); err == nil {
		p.Status = status
		return cliProblem{p}
	}
	msg := strings.Join(strings.Fields(string(b)), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return fmt.Errorf("HTTP %d from %s: %s", status, base, msg)
}

// do sends one request, retrying a 503 and a failed connection (see
// withRetries) with the same headers, Idempotency-Key included. A change
// without an Idempotency-Key (redeeming a login, revoking the key itself)
// is sent once: its first attempt may have acted, and a second would fail
// for that reason and hide the first one's result.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, headers map[string]string) (json.RawMessage, error) {
	send := func() (json.RawMessage, error) { return c.once(ctx, method, path, body, headers) }
	idem := headers["Idempotency-Key"]
	if idem == "" && method != http.MethodGet && method != http.MethodHead {
		return send()
	}
	return withRetries(ctx, idem, send)
}

func (c *apiClient) once(ctx context.Context, method, path string, body []byte, headers map[string]string) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, &retryable{err: fmt.Errorf("calling %s: %w", c.base, err)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, &retryable{err: fmt.Errorf("reading the answer of %s: %w", c.base, err)}
	}
	if res.StatusCode == http.StatusServiceUnavailable {
		err := problemFrom(res.StatusCode, c.base, b)
		var p cliProblem
		if errors.As(err, &p) && p.Code != problem.Unavailable {
			return nil, err // AGENT_NOT_CONFIGURED and the like: waiting will not help
		}
		return nil, &retryable{err: err, after: retryAfter(res.Header)}
	}
	if res.StatusCode >= 400 {
		return nil, problemFrom(res.StatusCode, c.base, b)
	}
	return b, nil
}

// column picks a value out of a JSON object for a table.
type column struct {
	title string
	path  string // dotted path in the object
}

// printResult prints the server's answer as JSON or as a table of cols,
// one row per item of a list ({data, nextCursor}) or one row for an object.
func printResult(out io.Writer, raw json.RawMessage, asJSON bool, cols []column) error {
	if asJSON {
		return writeRawJSON(out, raw)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	if len(cols) == 0 {
		return fieldTable(out, v)
	}
	rows := []any{v}
	next := ""
	if m, ok := v.(map[string]any); ok {
		if d, ok := m["data"].([]any); ok {
			rows = d
			next, _ = m["nextCursor"].(string)
		}
	}
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	cells := make([][]string, len(rows))
	for j, r := range rows {
		cells[j] = make([]string, len(cols))
		for i, c := range cols {
			cells[j][i] = lookup(r, c.path)
		}
	}
	if err := table(out, titles, cells); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(out, "more: --cursor %s\n", cell(next))
	}
	return nil
}

func lookup(v any, path string) string {
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[part]
	}
	return format(v)
}

// format shows one JSON value in a table cell.
func format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any:
		return fmt.Sprint(len(x))
	case float64:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", x), "0"), ".")
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// fieldTable shows an object no table was designed for as FIELD/VALUE rows.
func fieldTable(out io.Writer, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return table(out, []string{"VALUE"}, [][]string{{format(v)}})
	}
	rows := make([][]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		rows = append(rows, []string{k, lookup(m, k)})
	}
	return table(out, []string{"FIELD", "VALUE"}, rows)
}
