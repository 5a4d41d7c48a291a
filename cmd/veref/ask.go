package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/verefwork/veref/problem"
)

// askResponse is the part of agent.Response the CLI prints; --json prints
// the server's object as received, so fields added later still show.
type askResponse struct {
	ConversationID string `json:"conversationId"`
	Answer         string `json:"answer"`
	ToolCalls      []struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"toolCalls"`
	Model            string            `json:"model"`
	StopReason       string            `json:"stopReason"`
	Status           string            `json:"status"`
	PendingApprovals []pendingApproval `json:"pendingApprovals"`
}

type pendingApproval struct {
	CallID    string          `json:"callId"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Reason    string          `json:"reason"`
	ExpiresAt time.Time       `json:"expiresAt"`
}

type askDecision struct {
	CallID   string `json:"callId"`
	Decision string `json:"decision"`
	Note     string `json:"note,omitempty"`
}

type askRequest struct {
	Message        string        `json:"message,omitempty"`
	ConversationID string        `json:"conversationId,omitempty"`
	Approvals      []askDecision `json:"approvals,omitempty"`
	AutoApprove    []string      `json:"autoApprove,omitempty"`
}

// askOptions are veref ask's flags.
type askOptions struct {
	conversation  string
	approve, deny []string
	note          string
	yes, noInput  bool
	autoApprove   []string
	asJSON        bool
	apiURL        string
	stdinTerminal bool
}

// maxApprovalRounds bounds how often one invocation resumes a run, so a
// model that keeps asking cannot keep a --yes loop going.
const maxApprovalRounds = 10

// askCmd runs `veref ask`. Flags may come before or after the question.
func (c *cli) askCmd() *cobra.Command {
	var o askOptions
	var out output
	cmd := &cobra.Command{
		Use:   `ask "question"`,
		Short: "Ask Veref's agent a question about your reference checks",
		Long: `Asks Veref's agent (POST /v1/api/agent) with $VEREF_API_KEY, streams the
answer, then lists the operations it ran. Continue a thread with the
conversation id it prints.

Calls that e-mail people, publish links, or cancel or overwrite something
wait for your approval. On a terminal, ask shows each and asks y/N. Off a
terminal, or with --no-input, it prints the command that decides them and
exits with status 3:

  veref ask --conversation ID --approve CALL_ID … | --deny CALL_ID …

--yes approves every call shown, explicitly.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.asJSON, err = out.asJSON(); err != nil {
				return err
			}
			o.apiURL = c.apiURL
			o.stdinTerminal = isTerminalReader(c.stdin)
			return cmdAsk(cmd.Context(), strings.Join(args, " "), o, c.getenv, c.stdin, c.stdout, c.stderr)
		},
	}
	c.apiURLFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&o.conversation, "conversation", "", "continue this conversation id")
	f.StringSliceVar(&o.approve, "approve", nil, "approve this pending call id (repeatable)")
	f.StringSliceVar(&o.deny, "deny", nil, "deny this pending call id (repeatable)")
	f.StringVar(&o.note, "note", "", "note recorded with the --approve/--deny decisions")
	f.BoolVarP(&o.yes, "yes", "y", false, "approve every call the agent asks for, without asking")
	f.BoolVar(&o.noInput, "no-input", false, "never prompt; exit 3 when a call needs approval")
	f.StringSliceVar(&o.autoApprove, "auto-approve", nil, "pre-approve these tools for this run (recorded in the audit trail)")
	out.flags(f, true)
	return cmd
}

func cmdAsk(ctx context.Context, question string, o askOptions, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	question = strings.TrimSpace(question)
	o.conversation = strings.TrimSpace(o.conversation)
	decided := len(o.approve)+len(o.deny) > 0
	switch {
	case question == "" && !decided:
		return usageError{`veref ask needs a question, e.g. veref ask "which reference checks are waiting on referees?"`}
	case decided && o.conversation == "":
		return usageError{"--approve and --deny need --conversation ID (printed when the agent asked)"}
	}
	base, key, err := apiTarget(o.apiURL, getenv)
	if err != nil {
		return err
	}
	a := &asker{base: strings.TrimRight(base, "/"), key: key, o: o, in: bufio.NewReader(stdin), stdout: stdout, stderr: stderr}
	req := askRequest{Message: question, ConversationID: o.conversation, AutoApprove: o.autoApprove}
	for _, id := range o.approve {
		req.Approvals = append(req.Approvals, askDecision{CallID: strings.TrimSpace(id), Decision: "approve", Note: o.note})
	}
	for _, id := range o.deny {
		req.Approvals = append(req.Approvals, askDecision{CallID: strings.TrimSpace(id), Decision: "deny", Note: o.note})
	}
	for round := 0; ; round++ {
		r, err := a.send(ctx, req)
		if err != nil {
			return err
		}
		if r.Status != "requires_approval" {
			return nil
		}
		if round+1 >= maxApprovalRounds {
			return approvalError{fmt.Sprintf("the agent asked for approval %d times in one run; decide the calls above with veref ask --conversation %s", maxApprovalRounds, r.ConversationID)}
		}
		decisions, err := a.decide(r)
		if err != nil {
			return err
		}
		req = askRequest{ConversationID: r.ConversationID, Approvals: decisions, AutoApprove: o.autoApprove}
	}
}

// asker is one invocation of veref ask: it may resume the run several
// times as the caller decides pending calls.
type asker struct {
	base, key      string
	o              askOptions
	in             *bufio.Reader
	stdout, stderr io.Writer
}

// send asks once, streaming the answer, and prints the outcome.
func (a *asker) send(ctx context.Context, ar askRequest) (askResponse, error) {
	var r askResponse
	body, _ := json.Marshal(ar)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/v1/api/agent", bytes.NewReader(body))
	if err != nil {
		return r, fmt.Errorf("ask: bad API URL %q: %w", a.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	// No client timeout: the server bounds every run and keeps the stream alive.
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, fmt.Errorf("ask: cannot reach %s: %w", a.base, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return r, askHTTPError(res, a.base)
	}

	final, err := readAskStream(res.Body, func(event string, data []byte) {
		if a.o.asJSON {
			return
		}
		switch event {
		case "answer_delta":
			var d struct{ Text string }
			if json.Unmarshal(data, &d) == nil {
				fmt.Fprint(a.stdout, prose(d.Text))
			}
		case "tool_call":
			var c struct{ Name string }
			if json.Unmarshal(data, &c) == nil {
				fmt.Fprintf(a.stderr, "· %s\n", cell(c.Name))
			}
		}
	})
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(final, &r); err != nil {
		return r, fmt.Errorf("ask: the server's answer is not readable: %w", err)
	}
	if a.o.asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, final, "", "  "); err != nil {
			return r, fmt.Errorf("ask: the server's answer is not JSON: %w", err)
		}
		out.WriteByte('\n')
		_, err := a.stdout.Write(out.Bytes())
		return r, err
	}
	a.print(r)
	return r, nil
}

func (a *asker) print(r askResponse) {
	w := a.stdout
	fmt.Fprintln(w)
	if r.Status != "completed" && r.Status != "requires_approval" && r.Answer != "" {
		// Not the model's words but the server's account of a stopped run.
		fmt.Fprintln(w, "\n"+prose(r.Answer))
	}
	calls := r.ToolCalls[:0:0]
	for _, c := range r.ToolCalls {
		if c.Outcome != "APPROVAL_REQUIRED" { // those are listed under "Waiting for your approval"
			calls = append(calls, c)
		}
	}
	if len(calls) > 0 {
		fmt.Fprintln(w, "\nTool calls:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range calls {
			line := "  " + cell(c.Name) + "\t" + cell(c.Outcome)
			if c.Error != "" {
				line += "\t" + cell(c.Error)
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
	if r.StopReason != "" && r.StopReason != "answered" && r.Status != "requires_approval" {
		fmt.Fprintf(w, "\nStopped early: %s\n", cell(r.StopReason))
	}
	if len(r.PendingApprovals) > 0 {
		fmt.Fprintln(w, "\nWaiting for your approval:")
		for _, p := range r.PendingApprovals {
			fmt.Fprintf(w, "  %s  %s %s\n      %s; expires %s\n", cell(p.CallID), cell(p.Tool), cell(string(p.Arguments)),
				reasonText(p.Reason), p.ExpiresAt.Local().Format("15:04 MST"))
		}
	}
	if r.Status == "requires_approval" {
		// The way on is a decision, not a new question: see below.
		fmt.Fprintf(w, "\nConversation %s\n", cell(r.ConversationID))
		return
	}
	fmt.Fprintf(w, "\nConversation %s (continue with: veref ask --conversation %s \"…\")\n", cell(r.ConversationID), cell(r.ConversationID))
}

func reasonText(reason string) string {
	switch reason {
	case "open_world":
		return "needs approval: it reaches people or the public outside Veref"
	case "destructive":
		return "needs approval: it cancels, revokes or overwrites something"
	}
	return "needs approval: " + cell(reason)
}

// decide collects decisions on r's pending calls: all approved with --yes,
// y/N for each on a terminal, otherwise none: the command that decides
// them is printed and ask exits 3.
func (a *asker) decide(r askResponse) ([]askDecision, error) {
	var out []askDecision
	switch {
	case a.o.yes:
		for _, p := range r.PendingApprovals {
			out = append(out, askDecision{CallID: p.CallID, Decision: "approve", Note: "approved with veref ask --yes"})
		}
		fmt.Fprintf(a.stderr, "Approving %d call(s) (--yes).\n", len(out))
		return out, nil
	case a.o.noInput || !a.o.stdinTerminal || a.o.asJSON:
		ids := make([]string, len(r.PendingApprovals))
		for i, p := range r.PendingApprovals {
			ids[i] = cell(p.CallID)
		}
		conv := cell(r.ConversationID)
		w := a.stdout
		if a.o.asJSON {
			w = a.stderr // stdout holds JSON only
		}
		fmt.Fprintf(w, "To approve: veref ask --conversation %s --approve %s\n", conv, strings.Join(ids, " --approve "))
		fmt.Fprintf(w, "To deny:    veref ask --conversation %s --deny %s\n", conv, strings.Join(ids, " --deny "))
		return nil, approvalError{fmt.Sprintf("%d call(s) wait for approval in conversation %s", len(ids), conv)}
	}
	// The question goes where the person looks: stdout, unless it is
	// redirected to a file.
	prompt := a.stdout
	if !isTerminal(a.stdout) {
		prompt = a.stderr
	}
	for _, p := range r.PendingApprovals {
		fmt.Fprintf(prompt, "Approve %s %s? [y/N] ", cell(p.Tool), cell(string(p.Arguments)))
		line, err := a.in.ReadString('\n')
		if err != nil && line == "" {
			return nil, approvalError{"no answer to the approval question; nothing was approved (conversation " + cell(r.ConversationID) + ")"}
		}
		d := askDecision{CallID: p.CallID, Decision: "deny", Note: "denied at the veref ask prompt"}
		if ans := strings.ToLower(strings.TrimSpace(line)); ans == "y" || ans == "yes" {
			d = askDecision{CallID: p.CallID, Decision: "approve", Note: "approved at the veref ask prompt"}
		}
		out = append(out, d)
	}
	return out, nil
}

// isTerminalReader reports whether r is a terminal a person types into.
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// readAskStream reads server-sent events until `done` (whose data it
// returns) or `error` (returned as one line).
func readAskStream(body io.Reader, on func(event string, data []byte)) (json.RawMessage, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20) // `done` carries every tool call
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event != "" {
				payload := append([]byte(nil), data.Bytes()...)
				switch event {
				case "done":
					return payload, nil
				case "error":
					p, err := problem.Decode(payload, 0)
					if err != nil {
						return nil, fmt.Errorf("ask: the server reported an error: %s", payload)
					}
					return nil, cliProblem{p}
				}
				on(event, payload)
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"): // keep-alive comment
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ask: the answer stream broke: %w", err)
	}
	return nil, errors.New("ask: the server closed the stream before the answer was complete; try again")
}

// askHTTPError turns a refused request into one line, from problem+json
// when the server sent it.
func askHTTPError(res *http.Response, base string) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return problemFrom(res.StatusCode, base, b)
}
