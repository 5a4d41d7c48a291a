package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/verefwork/veref/auth"
)

// verb is one operation of a noun of the CLI.
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
var whoamiCols = []column{{"TENANT", "tenantId"}, {"RECRUITER", "recruiterId"}, {"ENV", "environment"}, {"KEY", "keyPrefix"}, {"SCOPES", "scopes"}}

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

// apiURLFlag adds --api-url to a client command and its subcommands.
func (c *cli) apiURLFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.apiURL, "api-url", "", "Veref API base URL (default $VEREF_API_URL or "+defaultAPIURL+")")
}

func (c *cli) whoamiCmd() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the tenant, recruiter, environment and scopes of your key",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.call(cmd, "GET", "/v1/api/me", "", nil, whoamiCols, &out)
		},
	}
	c.apiURLFlag(cmd)
	out.flags(cmd.Flags(), true)
	return cmd
}

func (c *cli) resourceCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, noun := range sortedKeys(resources) {
		g := groupCmd(noun, "Work with "+noun)
		c.apiURLFlag(g)
		for _, name := range sortedKeys(resources[noun]) {
			g.AddCommand(c.verbCmd(noun, name, resources[noun][name]))
		}
		cmds = append(cmds, g)
	}
	return cmds
}

func (c *cli) verbCmd(noun, name string, v verb) *cobra.Command {
	var out output
	var bodyFile, idem string
	query := map[string]*string{}
	hasID := strings.Contains(v.path, "{id}")
	// `references start --json FILE` is the documented form: there --json
	// names the request, and the output is chosen with -o.
	isStart := noun == "references" && name == "start"
	use, n := name, 0
	if hasID {
		use, n = name+" ID", 1
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: v.method + " " + v.path,
		Args:  exactArgs(n, strings.TrimPrefix(use, name+" ")),
	}
	fs := cmd.Flags()
	out.flags(fs, !isStart)
	if v.body {
		if isStart {
			fs.StringVar(&bodyFile, "json", "", "file with the request body as JSON ('-' for standard input)")
		} else {
			fs.StringVar(&bodyFile, "body", "", "file with the request body as JSON ('-' for standard input)")
		}
		fs.StringVar(&bodyFile, "file", "", "file with the request body as JSON ('-' for standard input)")
		if v.method == "POST" {
			fs.StringVar(&idem, "idempotency-key", "", "retry-safe key; a random one is used when absent")
		}
	}
	if v.method == "GET" && !hasID {
		for _, q := range []string{"limit", "cursor", "q", "email", "status", "candidateId", "requestId"} {
			query[q] = fs.String(q, "", "filter or paging: "+q)
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := v.path
		if hasID {
			path = strings.Replace(path, "{id}", url.PathEscape(args[0]), 1)
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
		var body []byte
		if v.body {
			body = []byte("{}")
			if bodyFile != "" {
				var err error
				if body, err = readBody(bodyFile, c.stdin); err != nil {
					return err
				}
			} else if isStart || noun == "candidates" {
				flagName := "body"
				if isStart {
					flagName = "json"
				}
				return usageError{fmt.Sprintf("%s needs a request body: --%s FILE", cmd.CommandPath(), flagName)}
			}
		}
		if v.method == "POST" && idem == "" {
			idem = "cli-" + auth.RandomString(24)
		}
		return c.call(cmd, v.method, path, idem, body, v.cols, &out)
	}
	return cmd
}

// call sends one request and prints the answer.
func (c *cli) call(cmd *cobra.Command, method, path, idem string, body []byte, cols []column, out *output) error {
	asJSON, err := out.asJSON()
	if err != nil {
		return err
	}
	client, err := newAPIClient(c.apiURL, c.getenv)
	if err != nil {
		return err
	}
	headers := map[string]string{}
	if idem != "" {
		headers["Idempotency-Key"] = idem
	}
	raw, err := client.do(cmd.Context(), method, path, body, headers)
	if err != nil {
		return err
	}
	if err := printResult(c.stdout, raw, asJSON, cols); err != nil {
		return err
	}
	if !asJSON {
		printTestLinks(c.stdout, raw)
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
		fmt.Fprintf(out, "  %s  %s\n", cell(l.RefereeID), cell(l.URL))
	}
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
