package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verefwork/veref/auth"
	vmcp "github.com/verefwork/veref/mcp"
)

// apiClient calls the REST API with the user's key. The key is read from
// the environment only, never a flag, so it stays out of shell history.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

func newAPIClient(apiURL string, getenv func(string) string) (*apiClient, error) {
	base, key, err := apiTarget(apiURL, getenv)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: base, key: key, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiTarget is where every client command (REST, ask, mcp) sends the key:
// the key from the environment only, the URL from the flag, the
// environment or the default, and never the key over plain http to a
// remote host.
func apiTarget(flagURL string, getenv func(string) string) (base, key string, err error) {
	key = strings.TrimSpace(getenv("VEREF_API_KEY"))
	if key == "" {
		return "", "", errors.New("VEREF_API_KEY is not set: export VEREF_API_KEY=vrf_… (from veref serve --dev, veref admin keys create, or your key management page)")
	}
	if _, err := auth.ParseToken(key); err != nil {
		return "", "", fmt.Errorf("VEREF_API_KEY does not look like a Veref key: %v", err)
	}
	base = strings.TrimSpace(flagURL)
	if base == "" {
		base = strings.TrimSpace(getenv("VEREF_API_URL"))
	}
	if base == "" {
		base = defaultAPIURL
	}
	if err := vmcp.CheckAPIURL(base); err != nil {
		return "", "", err
	}
	return strings.TrimRight(base, "/"), key, nil
}

// problem is the server's problem+json error, printed as one line.
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Hint   string `json:"hint"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func (p *problem) Error() string {
	s := fmt.Sprintf("%s (%d): %s", p.Code, p.Status, p.Detail)
	if len(p.Errors) > 1 {
		var locs []string
		for _, e := range p.Errors[1:] {
			locs = append(locs, e.Location+": "+e.Message)
		}
		s += "; also " + strings.Join(locs, "; ")
	}
	if p.Hint != "" {
		s += " — " + p.Hint
	}
	return s
}

func (c *apiClient) do(ctx context.Context, method, path string, body []byte, headers map[string]string) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", c.base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 400 {
		p := &problem{Status: res.StatusCode}
		if json.Unmarshal(b, p) != nil || p.Code == "" {
			return nil, fmt.Errorf("HTTP %d from %s: %s", res.StatusCode, c.base, strings.TrimSpace(string(b)))
		}
		return nil, p
	}
	return b, nil
}

// column picks a value out of a JSON object for a table.
type column struct {
	title string
	path  string // dotted path in the object
}

func printResult(out io.Writer, raw json.RawMessage, asJSON bool, cols []column) error {
	if asJSON {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	rows := []any{v}
	next := ""
	if m, ok := v.(map[string]any); ok {
		if d, ok := m["data"].([]any); ok {
			rows = d
			next, _ = m["nextCursor"].(string)
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	fmt.Fprintln(w, strings.Join(titles, "\t"))
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = lookup(r, c.path)
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(out, "more: --cursor %s\n", next)
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

// resource is one noun of the CLI and its verbs.
type verb struct {
	method string
	path   string // with {id}
	cols   []column
	body   bool
}

var candidateCols = []column{{"ID", "id"}, {"NAME", "name"}, {"EMAIL", "email"}, {"ROLE", "role"}, {"CREATED", "createdAt"}}
var referenceCols = []column{{"ID", "id"}, {"CANDIDATE", "candidateId"}, {"STATUS", "status"}, {"REFEREES", "referees"}, {"CREATED", "createdAt"}}
var reportCols = []column{{"ID", "id"}, {"REQUEST", "requestId"}, {"AVERAGE", "content.overallAverage"}, {"AGREEMENT", "content.agreement"}, {"FLAGS", "content.flags"}}
var valuationCols = []column{{"ID", "id"}, {"REQUEST", "requestId"}, {"STATUS", "status"}, {"SCORE", "score"}, {"ATTEMPTS", "attempts"}}

var resources = map[string]map[string]verb{
	"candidates": {
		"list":   {method: "GET", path: "/v1/api/candidates", cols: candidateCols},
		"get":    {method: "GET", path: "/v1/api/candidates/{id}", cols: candidateCols},
		"create": {method: "POST", path: "/v1/api/candidates", cols: candidateCols, body: true},
		"update": {method: "PATCH", path: "/v1/api/candidates/{id}", cols: candidateCols, body: true},
	},
	"references": {
		"list":   {method: "GET", path: "/v1/api/references", cols: referenceCols},
		"get":    {method: "GET", path: "/v1/api/references/{id}", cols: referenceCols},
		"start":  {method: "POST", path: "/v1/api/references", cols: referenceCols, body: true},
		"invite": {method: "POST", path: "/v1/api/references/{id}/invitations", cols: referenceCols, body: true},
		"cancel": {method: "POST", path: "/v1/api/references/{id}/cancel", cols: referenceCols, body: true},
	},
	"reports": {
		"list":     {method: "GET", path: "/v1/api/reports", cols: reportCols},
		"get":      {method: "GET", path: "/v1/api/reports/{id}", cols: reportCols},
		"generate": {method: "POST", path: "/v1/api/references/{id}/reports", cols: reportCols, body: true},
		"share":    {method: "POST", path: "/v1/api/reports/{id}/shares", cols: []column{{"SHARE", "id"}, {"URL", "url"}, {"EXPIRES", "expiresAt"}}, body: true},
	},
	"valuations": {
		"list": {method: "GET", path: "/v1/api/valuations", cols: valuationCols},
		"get":  {method: "GET", path: "/v1/api/valuations/{id}", cols: valuationCols},
		"run":  {method: "POST", path: "/v1/api/references/{id}/valuations", cols: valuationCols, body: true},
	},
}

func runClient(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch args[0] {
	case "whoami":
		args = []string{"whoami", "get"}
	case "mcp":
		return cmdMCP(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "ask":
		return cmdAsk(ctx, args[1:], getenv, stdout, stderr)
	}
	verbs, ok := resources[args[0]]
	if args[0] == "whoami" {
		verbs, ok = map[string]verb{"get": {method: "GET", path: "/v1/api/me",
			cols: []column{{"TENANT", "tenantId"}, {"RECRUITER", "recruiterId"}, {"ENV", "environment"}, {"KEY", "keyPrefix"}, {"SCOPES", "scopes"}}}}, true
	}
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q; see veref --help", args[0])}
	}
	if len(args) < 2 || args[1] == "--help" || args[1] == "-h" || args[1] == "help" {
		msg := fmt.Sprintf("usage: veref %s <verb> [flags]; verbs: %s; 'veref %s <verb> --help' for a verb's flags", args[0], verbNames(verbs), args[0])
		if len(args) < 2 {
			return usageError{msg}
		}
		fmt.Fprintln(stdout, msg)
		return nil
	}
	v, ok := verbs[args[1]]
	if !ok {
		return usageError{fmt.Sprintf("veref %s has no verb %q; verbs: %s", args[0], args[1], verbNames(verbs))}
	}
	fs := flag.NewFlagSet("veref "+args[0]+" "+args[1], flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api-url", "", "API base URL (default $VEREF_API_URL or "+defaultAPIURL+")")
	output := fs.String("output", "table", "table or json")
	asJSON := new(bool)
	if args[1] != "start" {
		asJSON = fs.Bool("json", false, "print JSON (same as --output json)")
	}
	var bodyFile, idem *string
	query := map[string]*string{}
	if v.body {
		if args[1] == "start" {
			// `references start --json FILE` reads the request; output stays a table unless --output json.
			bodyFile = fs.String("json", "", "file with the request body as JSON ('-' for standard input)")
		} else {
			bodyFile = fs.String("body", "", "file with the request body as JSON ('-' for standard input)")
		}
		idem = fs.String("idempotency-key", "", "retry-safe key; a random one is used when absent")
	}
	if v.method == "GET" && !strings.Contains(v.path, "{id}") {
		for _, q := range []string{"limit", "cursor", "q", "email", "status", "candidateId", "requestId"} {
			query[q] = fs.String(q, "", "filter or paging: "+q)
		}
	}
	flagArgs, positional := splitArgs(fs, args[2:])
	if err := fs.Parse(flagArgs); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{}
	}
	path := v.path
	if strings.Contains(path, "{id}") {
		if len(positional) != 1 {
			return usageError{fmt.Sprintf("usage: veref %s %s ID", args[0], args[1])}
		}
		path = strings.Replace(path, "{id}", url.PathEscape(positional[0]), 1)
	}
	vals := url.Values{}
	for k, p := range query {
		if *p != "" {
			vals.Set(k, *p)
		}
	}
	if len(vals) > 0 {
		path += "?" + vals.Encode()
	}
	c, err := newAPIClient(*apiURL, getenv)
	if err != nil {
		return err
	}
	var body []byte
	headers := map[string]string{}
	if v.body {
		body = []byte("{}")
		if *bodyFile != "" {
			if body, err = readBody(*bodyFile, stdin); err != nil {
				return err
			}
		} else if args[1] == "start" || args[0] == "candidates" {
			return usageError{fmt.Sprintf("veref %s %s needs a request body: --%s FILE", args[0], args[1], map[bool]string{true: "json", false: "body"}[args[1] == "start"])}
		}
		if v.method == "POST" {
			key := *idem
			if key == "" {
				key = "cli-" + auth.RandomString(24)
			}
			headers["Idempotency-Key"] = key
		}
	}
	raw, err := c.do(ctx, v.method, path, body, headers)
	if err != nil {
		return err
	}
	asJSONOut := *asJSON || *output == "json"
	if err := printResult(stdout, raw, asJSONOut, v.cols); err != nil {
		return err
	}
	if !asJSONOut {
		printTestLinks(stdout, raw)
	}
	return nil
}

// printTestLinks shows the invitation links a test key gets in place of
// e-mail: the table has no column for them, and they are shown only once.
func printTestLinks(out io.Writer, raw json.RawMessage) {
	var v struct {
		Links []struct {
			RefereeID string `json:"refereeId"`
			URL       string `json:"url"`
		} `json:"testInvitationLinks"`
	}
	if json.Unmarshal(raw, &v) != nil || len(v.Links) == 0 {
		return
	}
	fmt.Fprintln(out, "\nTest environment: no e-mail was sent. The referees' links (shown once):")
	for _, l := range v.Links {
		fmt.Fprintf(out, "  %s  %s\n", l.RefereeID, l.URL)
	}
}

// splitArgs lets ids come before or after flags: `get ID --json` and `get --json ID`.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(fs, a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	return flags, positional
}

func isBoolFlag(fs *flag.FlagSet, a string) bool {
	f := fs.Lookup(strings.TrimLeft(a, "-"))
	if f == nil {
		return true // unknown: let flag.Parse report it
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func readBody(name string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", name)
	}
	return b, nil
}

func verbNames(m map[string]verb) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	return strings.Join(sortStrings(names), ", ")
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
