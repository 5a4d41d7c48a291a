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
	"github.com/spf13/pflag"

	"github.com/verefwork/veref/auth"
)

var candidateCols = []column{{"ID", "id"}, {"NAME", "name"}, {"EMAIL", "email"}, {"ROLE", "role"}, {"CREATED", "createdAt"}}
var referenceCols = []column{{"ID", "id"}, {"CANDIDATE", "candidateId"}, {"STATUS", "status"}, {"REFEREES", "referees"}, {"CREATED", "createdAt"}}
var reportCols = []column{{"ID", "id"}, {"REQUEST", "requestId"}, {"AVERAGE", "content.overallAverage"}, {"AGREEMENT", "content.agreement"}, {"FLAGS", "content.flags"}}
var valuationCols = []column{{"ID", "id"}, {"REQUEST", "requestId"}, {"STATUS", "status"}, {"SCORE", "score"}, {"ATTEMPTS", "attempts"}}
var whoamiCols = []column{{"TENANT", "tenantId"}, {"RECRUITER", "recruiterId"}, {"ENV", "environment"}, {"KEY", "keyPrefix"}, {"SCOPES", "scopes"}}
var shareCols = []column{{"SHARE", "id"}, {"URL", "url"}, {"EXPIRES", "expiresAt"}, {"REVOKED", "revokedAt"}}

// columns a table shows, by tool and then by noun; anything else is shown
// as FIELD/VALUE rows.
var toolCols = map[string][]column{"whoami": whoamiCols, "reports_share": shareCols, "reports_revoke_share": shareCols}
var nounCols = map[string][]column{"candidates": candidateCols, "references": referenceCols, "reports": reportCols, "valuations": valuationCols}

func colsOf(op operation) []column {
	if c, ok := toolCols[op.tool.Name]; ok {
		return c
	}
	return nounCols[op.noun]
}

// apiURLFlag adds --api-url to a client command and its subcommands.
func (c *cli) apiURLFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.apiURL, "api-url", "", "Veref API base URL (default $VEREF_API_URL or "+defaultAPIURL+")")
}

// operationCmds are the client commands generated from the catalogue:
// one group per noun, one command per operation.
func (c *cli) operationCmds() []*cobra.Command {
	var cmds []*cobra.Command
	byNoun := operationsByNoun(catalogueOperations())
	for _, noun := range sortedKeys(byNoun) {
		if noun == "" {
			for _, op := range byNoun[noun] {
				cmd := c.operationCmd(op)
				c.apiURLFlag(cmd)
				cmds = append(cmds, cmd)
			}
			continue
		}
		g := groupCmd(noun, "Work with "+noun)
		c.apiURLFlag(g)
		for _, op := range byNoun[noun] {
			g.AddCommand(c.operationCmd(op))
		}
		cmds = append(cmds, g)
	}
	return cmds
}

// operationCmd builds one operation's command: path parameters are
// arguments, query and scalar body fields are flags, and the whole body can
// come from a file.
func (c *cli) operationCmd(op operation) *cobra.Command {
	var out output
	var bodyFile, idem string
	use := op.verb
	for _, p := range op.pathParams {
		use += " " + argName(p)
	}
	cmd := &cobra.Command{
		Use:     use,
		Aliases: verbAliases[op.tool.Name],
		Short:   op.tool.Title,
		Long:    op.tool.Description + "\n\n" + op.method + " " + op.path + " (operation " + op.tool.Name + ")",
		Args:    exactArgs(len(op.pathParams), strings.TrimSpace(strings.TrimPrefix(use, op.verb))),
	}
	fs := cmd.Flags()
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName { return pflag.NormalizedName(kebab(name)) })
	// `references start --json FILE` is the documented form: there --json
	// names the request, and the output is chosen with -o.
	jsonIsFile := op.tool.Name == "references_start"
	out.flags(fs, !jsonIsFile)
	hasBody := op.method == "POST" || op.method == "PUT" || op.method == "PATCH"
	if hasBody {
		if jsonIsFile {
			fs.StringVar(&bodyFile, "json", "", "file with the request body as JSON ('-' for standard input)")
		} else {
			fs.StringVar(&bodyFile, "body", "", "file with the request body as JSON ('-' for standard input)")
		}
		fs.StringVar(&bodyFile, "file", "", "file with the request body as JSON ('-' for standard input); flags override its fields")
	}
	if op.method != "GET" {
		fs.StringVar(&idem, "idempotency-key", "", "retry-safe key; a random one is used when absent")
	}
	values := map[string]func() any{}
	for _, p := range op.params {
		if p.flaggable() {
			values[p.name] = paramFlag(cmd, p)
		}
	}
	w := c.waitFlags(cmd, op)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := op.path
		for i, name := range op.pathParams {
			path = strings.Replace(path, "{"+name+"}", url.PathEscape(args[i]), 1)
		}
		query := url.Values{}
		body := map[string]any{}
		if bodyFile != "" {
			if err := readBody(bodyFile, c.stdin, &body); err != nil {
				return err
			}
		} else if missing := fileOnlyRequired(op); hasBody && missing != "" {
			flagName := "body"
			if jsonIsFile {
				flagName = "json"
			}
			return usageError{fmt.Sprintf("%s needs a request body with %s: --%s FILE", cmd.CommandPath(), missing, flagName)}
		}
		for _, p := range op.params {
			get, ok := values[p.name]
			if !ok || !fs.Changed(p.name) {
				continue
			}
			if p.in == "query" {
				query.Set(p.name, fmt.Sprint(get()))
			} else {
				body[p.name] = get()
			}
		}
		if len(query) > 0 {
			path += "?" + query.Encode()
		}
		var raw []byte
		if hasBody {
			raw, _ = json.Marshal(body)
		}
		if op.method != "GET" && idem == "" {
			idem = "cli-" + auth.RandomString(24)
		}
		return c.call(cmd, op, path, idem, raw, &out, w)
	}
	return cmd
}

// paramFlag adds the flag of one query or body field and returns its value.
func paramFlag(cmd *cobra.Command, p param) func() any {
	fs := cmd.Flags()
	usage := p.desc
	if len(p.enum) > 0 {
		usage = strings.TrimSpace(usage + " (" + strings.Join(p.enum, ", ") + ")")
	}
	if p.required {
		usage = strings.TrimSpace(usage + " (required)")
	}
	if usage == "" {
		usage = p.in + " parameter " + p.name
	}
	var get func() any
	switch p.typ {
	case "integer":
		v := fs.Int64(p.name, 0, usage)
		get = func() any { return *v }
	case "number":
		v := fs.Float64(p.name, 0, usage)
		get = func() any { return *v }
	case "boolean":
		v := fs.Bool(p.name, false, usage)
		get = func() any { return *v }
	case "array":
		v := fs.StringSlice(p.name, nil, usage+" (comma-separated or repeated)")
		get = func() any { return *v }
	default:
		v := fs.String(p.name, "", usage)
		get = func() any { return *v }
	}
	if len(p.enum) > 0 {
		// Registered once the flag exists: shells complete the allowed values.
		_ = cmd.RegisterFlagCompletionFunc(p.name, cobra.FixedCompletions(p.enum, cobra.ShellCompDirectiveNoFileComp))
	}
	return get
}

// fileOnlyRequired names the required body fields no flag can give.
func fileOnlyRequired(op operation) string {
	var names []string
	for _, p := range op.params {
		if p.in == "body" && p.required && !p.flaggable() {
			names = append(names, p.name)
		}
	}
	return strings.Join(names, ", ")
}

// call sends one request, waits when asked, and prints the answer.
func (c *cli) call(cmd *cobra.Command, op operation, path, idem string, body []byte, out *output, w *waiter) error {
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
	raw, err := client.do(cmd.Context(), op.method, path, body, headers)
	if err != nil {
		return err
	}
	var waitErr error
	if w != nil && w.on {
		raw, waitErr = c.wait(cmd.Context(), client, w, raw)
		if raw == nil {
			return waitErr
		}
	}
	if op.tool.Name == "whoami" {
		// Which key answered matters as much as whose it is.
		raw = withField(raw, "credentialSource", client.source)
	}
	if err := printResult(c.stdout, raw, asJSON, colsOf(op)); err != nil {
		return err
	}
	if !asJSON {
		printTestLinks(c.stdout, raw)
		if op.tool.Name == "whoami" {
			fmt.Fprintf(c.stdout, "Credential: %s\n", credentialLine(client.source, c.getenv))
		}
	}
	return waitErr
}

// withField adds one member to a JSON object.
func withField(raw json.RawMessage, name string, v any) json.RawMessage {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return raw
	}
	m[name] = v
	b, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return b
}

func credentialLine(source string, getenv func(string) string) string {
	switch source {
	case sourceEnv:
		return "env (VEREF_API_KEY)"
	case sourceKeychain:
		return "keychain (service " + keyringService + ")"
	default:
		return "file (" + displayPath(credentialsPath(getenv)) + ")"
	}
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

// readBody reads a JSON object from a file or standard input into body.
func readBody(name string, stdin io.Reader, body *map[string]any) error {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	if !json.Valid(b) {
		return fmt.Errorf("%s is not valid JSON", name)
	}
	if err := json.Unmarshal(b, body); err != nil || *body == nil {
		return fmt.Errorf("%s must hold a JSON object", name)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
