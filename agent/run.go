package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	openrouter "github.com/revrost/go-openrouter"
	"go.opentelemetry.io/otel/attribute"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/prompts"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// Stop reasons reported in Response.StopReason.
const (
	StopAnswered     = "answered"
	StopMaxSteps     = "max_steps"
	StopMaxToolCalls = "max_tool_calls"
	StopMaxTokens    = "max_tokens"
	StopTimeout      = "timeout"
	// StopApproval: calls wait for the caller's approval.
	StopApproval = "approval_required"
)

// Outcome codes the agent itself gives a tool call; the others are the
// tools package's error codes, or "ok". They are audit outcomes too.
const (
	OutcomeOK          = store.OutcomeOK
	OutcomeDuplicate   = store.Outcome(problem.DuplicateCall)
	OutcomeNotExecuted = store.Outcome(problem.NotExecuted)
)

// maxToolOutput caps what one tool result feeds back to the model, so a
// large list cannot eat the run's token budget in one step.
const maxToolOutput = 24000

// Response is the answer to POST /v1/api/agent, and the `done` SSE event.
type Response struct {
	ConversationID string     `json:"conversationId"`
	Answer         string     `json:"answer"`
	ToolCalls      []ToolCall `json:"toolCalls"`
	Model          string     `json:"model"`
	Steps          int        `json:"steps"`
	Usage          Usage      `json:"usage"`
	StopReason     string     `json:"stopReason"`
	// Status is completed, requires_approval, budget_exhausted or failed.
	Status string `json:"status" enum:"completed,requires_approval,budget_exhausted,failed"`
	// PendingApprovals are the calls waiting for a decision when Status is
	// requires_approval.
	PendingApprovals []PendingApproval `json:"pendingApprovals,omitempty"`
	TraceID          string            `json:"traceId,omitempty"`
}

// statusOf maps a stop reason to the run's status.
func statusOf(stop string) string {
	switch stop {
	case StopAnswered:
		return StatusCompleted
	case StopApproval:
		return StatusRequiresApproval
	}
	return StatusBudgetExhausted
}

// ToolCall is one function call the model asked for, and what became of it.
type ToolCall struct {
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name"`
	Arguments    json.RawMessage `json:"arguments"`
	Outcome      store.Outcome   `json:"outcome"`
	Error        string          `json:"error,omitempty"`
	DurationMS   float64         `json:"durationMs"`
	AuditEventID string          `json:"auditEventId,omitempty"`
	// Approval says how a call that needed approval got it: approved,
	// denied or auto_approved (pre-approved in the request).
	Approval string `json:"approval,omitempty"`
	// ApprovalCallID is the pending call's id, for calls that waited.
	ApprovalCallID string `json:"approvalCallId,omitempty"`
}

// Usage sums the provider's accounting over every model call of the run.
type Usage struct {
	PromptTokens     int     `json:"promptTokens"`
	CompletionTokens int     `json:"completionTokens"`
	ReasoningTokens  int     `json:"reasoningTokens"`
	Cost             float64 `json:"cost"`
}

func (u Usage) total() int { return u.PromptTokens + u.CompletionTokens }

// runner is one run of the tool-calling loop for one principal.
type runner struct {
	reg     *tools.Registry
	prov    *provider
	cfg     Config
	p       auth.Principal
	traceID string
	// emit reports progress (SSE); never nil.
	emit func(event string, data any)
	// streaming asks the provider for a stream and emits answer_delta as
	// the model writes.
	streaming bool
	// auto names the tools the caller pre-approved for this request.
	auto map[string]bool
	// conversationID is the thread's id, for audit rows.
	conversationID string
	// pending collects the calls this run paused.
	pending []pendingCall
}

// providerError is the whole chain failing; tool calls already made are
// kept so the caller can say what happened before the failure.
type providerError struct {
	chain     *chainError
	toolCalls []ToolCall
}

func (e *providerError) Error() string { return "agent: model provider failed: " + e.chain.Error() }

// run continues the conversation msgs, which ends with the user's question
// or the results of calls just decided. It returns the response and the new
// history to store. Exhausting a budget is not an error: the response says
// what was done and what was not. res carries calls already made this
// request (decisions applied before the model runs again).
func (r *runner) run(ctx context.Context, msgs []openrouter.ChatCompletionMessage, res Response) (Response, []openrouter.ChatCompletionMessage, error) {
	runCtx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()

	defs := r.toolDefinitions()
	res.TraceID = r.traceID
	if res.ToolCalls == nil {
		res.ToolCalls = []ToolCall{}
	}
	seen := map[string]int{}
	var (
		stop    string
		partial string   // text the model wrote before the run stopped
		notRun  []string // calls the model asked for that a limit prevented
	)

loop:
	for {
		switch {
		case runCtx.Err() != nil:
			stop = StopTimeout
			break loop
		case res.Steps >= r.cfg.MaxSteps:
			stop = StopMaxSteps
			break loop
		case res.Usage.total() >= r.cfg.MaxTokens:
			stop = StopMaxTokens
			break loop
		}
		res.Steps++
		r.emit("step", map[string]any{"step": res.Steps, "maxSteps": r.cfg.MaxSteps})

		resp, err := r.ask(runCtx, msgs, defs, &res)
		if err != nil {
			if ctx.Err() != nil {
				return res, nil, ctx.Err() // the caller went away
			}
			var ce *chainError
			// Out of time after some model answered is a budget stop; no
			// model answering at all is the provider failing.
			if runCtx.Err() != nil && res.Model != "" {
				stop = StopTimeout
				break loop
			}
			if errors.As(err, &ce) {
				return res, msgs, &providerError{chain: ce, toolCalls: res.ToolCalls}
			}
			return res, msgs, err
		}
		choice := resp.Choices[0]
		am := assistantMessage(choice)
		msgs = append(msgs, am)
		text := strings.TrimSpace(am.Content.Text)

		if len(am.ToolCalls) == 0 {
			if choice.FinishReason == openrouter.FinishReasonLength {
				stop, partial = StopMaxTokens, text
				break loop
			}
			stop, res.Answer = StopAnswered, text
			if res.Answer == "" {
				res.Answer = "The model returned an empty answer; try rephrasing the question."
				msgs[len(msgs)-1].Content = openrouter.Content{Text: res.Answer}
			}
			break loop
		}

		partial = text
		var blocked string
		msgs, blocked = r.calls(runCtx, am.ToolCalls, &res, msgs, seen, &notRun)
		if len(r.pending) > 0 {
			// The turn's other results are in; the paused calls' results
			// come when the caller decides. This wins over a limit: the
			// transcript must not keep a call without its result.
			stop = StopApproval
			break loop
		}
		if blocked != "" {
			stop = blocked
			break loop
		}
	}

	res, msgs = r.finish(stop, partial, notRun, res, msgs)
	return res, msgs, nil
}

// ask sends the conversation to the model chain, streaming when the caller
// listens to a stream, and adds the call's usage to the run's.
func (r *runner) ask(ctx context.Context, msgs []openrouter.ChatCompletionMessage, defs []openrouter.Tool, res *Response) (openrouter.ChatCompletionResponse, error) {
	req := openrouter.ChatCompletionRequest{
		Messages: append([]openrouter.ChatCompletionMessage{r.systemMessage()}, msgs...),
		Tools:    defs,
		// The completion may use what is left of the run's budget, no more.
		MaxTokens: r.cfg.MaxTokens - res.Usage.total(),
		Usage:     &openrouter.IncludeUsage{Include: true},
	}
	var resp openrouter.ChatCompletionResponse
	var err error
	ctx, span := telemetry.Start(ctx, "agent turn", attribute.Int("veref.agent.step", res.Steps))
	if r.streaming {
		resp, err = r.prov.stream(ctx, req, func(text string) {
			r.emit("answer_delta", map[string]string{"text": text})
		})
	} else {
		resp, err = r.prov.complete(ctx, req)
	}
	telemetry.End(span, err)
	if err != nil {
		return resp, err
	}
	res.Model = resp.Model
	if u := resp.Usage; u != nil {
		res.Usage.PromptTokens += u.PromptTokens
		res.Usage.CompletionTokens += u.CompletionTokens
		countTokens(resp.Model, u.PromptTokens, u.CompletionTokens)
		res.Usage.ReasoningTokens += u.CompletionTokenDetails.ReasoningTokens
		res.Usage.Cost += u.Cost
		if r.cfg.OnUsage != nil {
			r.cfg.OnUsage(ctx, u.PromptTokens+u.CompletionTokens)
		}
	}
	return resp, nil
}

// calls handles the tool calls of one model turn and returns the history
// with their results, and the limit that kept some from running, if any.
// Calls whose results the model could never read are not run: a write
// nobody reports on is worse than a write not made.
func (r *runner) calls(ctx context.Context, tcs []openrouter.ToolCall, res *Response, msgs []openrouter.ChatCompletionMessage,
	seen map[string]int, notRun *[]string) ([]openrouter.ChatCompletionMessage, string) {
	blocked := ""
	switch {
	case res.Steps >= r.cfg.MaxSteps:
		blocked = StopMaxSteps
	case res.Usage.total() >= r.cfg.MaxTokens:
		blocked = StopMaxTokens
	}
	for _, tc := range tcs {
		if blocked == "" && ctx.Err() != nil {
			blocked = StopTimeout
		}
		if blocked == "" && len(res.ToolCalls) >= r.cfg.MaxToolCalls {
			blocked = StopMaxToolCalls
		}
		if blocked != "" {
			why := "not run: " + limitSentence(blocked, r.cfg)
			*notRun = append(*notRun, safeName(tc.Function.Name))
			res.ToolCalls = append(res.ToolCalls, r.refuse(ctx, tc, OutcomeNotExecuted, why))
			msgs = append(msgs, openrouter.ToolMessage(tc.ID, toolError(tc.Function.Name, OutcomeNotExecuted, why)))
			continue
		}
		rec, content, paused := r.call(ctx, tc, seen, len(res.ToolCalls))
		res.ToolCalls = append(res.ToolCalls, rec)
		if !paused {
			msgs = append(msgs, openrouter.ToolMessage(tc.ID, content))
		}
	}
	return msgs, blocked
}

// finish sets the response's status and, when the model did not answer,
// the answer that says why.
func (r *runner) finish(stop, partial string, notRun []string, res Response, msgs []openrouter.ChatCompletionMessage) (Response, []openrouter.ChatCompletionMessage) {
	res.StopReason, res.Status = stop, statusOf(stop)
	if stop == StopApproval {
		res.Answer = approvalAnswer(partial, r.pending)
		res.PendingApprovals = pendingOf(r.pending)
		return res, msgs
	}
	if stop != StopAnswered {
		res.Answer = summary(stop, r.cfg, res.ToolCalls, notRun, partial)
		// End the stored turn on an assistant message, as providers expect
		// before the next user message.
		if last := &msgs[len(msgs)-1]; last.Role == openrouter.ChatMessageRoleAssistant && len(last.ToolCalls) == 0 {
			last.Content = openrouter.Content{Text: res.Answer}
		} else {
			msgs = append(msgs, openrouter.ChatCompletionMessage{Role: openrouter.ChatMessageRoleAssistant,
				Content: openrouter.Content{Text: res.Answer}})
		}
	}
	return res, msgs
}

// assistantMessage is what the next request must replay of the model's
// turn: text, tool calls and, for Gemini 3, the reasoning_details it signs
// its function calls with. The readable reasoning text is dropped; it is
// not needed again and only costs tokens.
func assistantMessage(c openrouter.ChatCompletionChoice) openrouter.ChatCompletionMessage {
	m := c.Message
	out := openrouter.ChatCompletionMessage{
		Role:             openrouter.ChatMessageRoleAssistant,
		Content:          openrouter.Content{Text: m.Content.Text},
		ToolCalls:        m.ToolCalls,
		ReasoningDetails: m.ReasoningDetails,
	}
	if len(out.ReasoningDetails) == 0 {
		out.ReasoningDetails = c.ReasoningDetails
	}
	if out.Content.Text == "" && len(m.Content.Multi) > 0 {
		var b strings.Builder
		for _, part := range m.Content.Multi {
			b.WriteString(part.Text)
		}
		out.Content.Text = b.String()
	}
	for i := range out.ToolCalls {
		out.ToolCalls[i].Index = nil
		if out.ToolCalls[i].Type == "" {
			out.ToolCalls[i].Type = openrouter.ToolTypeFunction
		}
	}
	return out
}

func (r *runner) systemMessage() openrouter.ChatCompletionMessage {
	env := "live"
	if r.p.Environment == auth.Test {
		env = "test (no real e-mail is sent)"
	}
	text := strings.TrimSpace(prompts.AgentSystem) + "\n\n## This session\n\n" +
		"- Environment of the key: " + env + "\n" +
		"- Current time: " + r.cfg.Now().UTC().Format(time.RFC3339) + "\n"
	return openrouter.SystemMessage(text)
}

// toolDefinitions offers the model only what the key's scopes allow; Invoke
// still checks every call, so this is a menu, not the boundary.
func (r *runner) toolDefinitions() []openrouter.Tool {
	allowed := r.reg.Allowed(r.p)
	defs := make([]openrouter.Tool, 0, len(allowed))
	for _, t := range allowed {
		desc := t.Description
		if desc == "" {
			desc = t.Title
		}
		// A copy: the registry's schema is shared with MCP and REST. Some
		// providers refuse an object schema without "properties", which is
		// what a tool without inputs (whoami) derives to.
		params := map[string]any{"type": "object"}
		for k, v := range t.InputSchema {
			params[k] = v
		}
		if _, ok := params["properties"]; !ok {
			params["properties"] = map[string]any{}
		}
		defs = append(defs, openrouter.Tool{Type: openrouter.ToolTypeFunction, Function: &openrouter.FunctionDefinition{
			Name: t.Name, Description: desc, Parameters: params,
		}})
	}
	return defs
}

// call handles one tool call of the model: a repeat is refused, an
// outward or destructive call is paused for approval (unless pre-approved),
// anything else runs. It returns the record and what the model sees, or
// paused when the call waits (its result comes with the decision).
func (r *runner) call(ctx context.Context, tc openrouter.ToolCall, seen map[string]int, index int) (ToolCall, string, bool) {
	name := tc.Function.Name
	args, canon := normalizeArguments(tc.Function.Arguments)
	r.emit("tool_call", map[string]any{"id": tc.ID, "name": name, "arguments": args})

	key := name + "\x00" + canon
	if prev, dup := seen[key]; dup {
		rec := r.refuse(ctx, tc, OutcomeDuplicate,
			fmt.Sprintf("refused: the same call with the same arguments was already made in this run (call %d); reuse its result", prev+1))
		r.emit("tool_result", rec)
		return rec, toolError(name, rec.Outcome, rec.Error), false
	}
	seen[key] = index
	if reason := r.approvalReason(name, args); reason != "" {
		if !r.auto[name] {
			rec, pc := r.pause(ctx, tc, args, reason)
			r.pending = append(r.pending, pc)
			return rec, "", true
		}
		rec, content := r.autoApproved(ctx, tc, args, reason)
		r.emit("tool_result", rec)
		return rec, content, false
	}
	rec, content := r.invoke(ctx, tc, args, nil)
	r.emit("tool_result", rec)
	return rec, content, false
}

// invoke runs one call through the registry, the one place that checks
// scopes, tenancy and writes the audit row, and returns what the model sees.
func (r *runner) invoke(ctx context.Context, tc openrouter.ToolCall, args json.RawMessage, auditData map[string]any) (ToolCall, string) {
	name := tc.Function.Name
	rec := ToolCall{ID: tc.ID, Name: name, Arguments: args}
	start := time.Now()
	out, err := r.reg.Invoke(ctx, tools.Call{
		Principal: r.p, Surface: tools.SurfaceAgent, TraceID: r.traceID, Tool: name, Input: args, AuditData: auditData,
	})
	rec.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		te := tools.AsError(err)
		rec.Outcome, rec.Error, rec.AuditEventID = store.Outcome(te.Code), te.Message, te.AuditID
		msg := te.Message
		if te.Hint != "" {
			msg += " Hint: " + te.Hint
		}
		return rec, toolError(name, store.Outcome(te.Code), msg)
	}
	rec.Outcome, rec.AuditEventID = OutcomeOK, out.AuditID
	return rec, toolOutput(name, out.JSON)
}

// refuse records a call the agent declined to run, through the registry so
// it is audited like every other call, and returns its record.
func (r *runner) refuse(ctx context.Context, tc openrouter.ToolCall, code store.Outcome, why string) ToolCall {
	args, _ := normalizeArguments(tc.Function.Arguments)
	te := r.reg.Refuse(context.WithoutCancel(ctx), tools.Call{Principal: r.p, Surface: tools.SurfaceAgent,
		TraceID: r.traceID, Tool: tc.Function.Name, Input: args}, &tools.Error{Code: problem.Code(code), Message: why})
	return ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args, Outcome: code, Error: why, AuditEventID: te.AuditID}
}

// normalizeArguments returns the arguments as a JSON value for the record
// and for Invoke, plus a canonical form (sorted keys, no spacing) that makes
// a repeated call recognisable. Arguments that are not JSON are passed on as
// a JSON string, which Invoke refuses (and audits) as invalid input, and
// so is JSON whose text decoding would change (a lone surrogate becomes
// U+FFFD): it goes on as sent, for Invoke to refuse naming the field,
// rather than run changed.
func normalizeArguments(raw string) (json.RawMessage, string) {
	if strings.TrimSpace(raw) == "" {
		raw = "{}"
	}
	if json.Valid([]byte(raw)) && tools.CheckText([]byte(raw), "") != nil {
		return json.RawMessage(raw), raw
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		if b, err := json.Marshal(v); err == nil {
			return b, string(b)
		}
	}
	b, _ := json.Marshal(raw)
	return b, string(b)
}

// toolOutput wraps a result as data. JSON text has '<' only inside strings,
// where \u003c means the same, so escaping it leaves the data intact while
// making it impossible for stored text to close the wrapper.
func toolOutput(name string, data []byte) string {
	body := bytes.ReplaceAll(data, []byte("<"), []byte(`\u003c`))
	note := ""
	if len(body) > maxToolOutput {
		note = fmt.Sprintf("\n[output truncated: first %d of %d bytes shown; narrow the request to see the rest]", maxToolOutput, len(body))
		body = body[:maxToolOutput]
	}
	return fmt.Sprintf("<tool_output tool=%q untrusted=\"true\">\n%s\n</tool_output>%s", safeName(name), body, note)
}

func toolError(name string, code store.Outcome, msg string) string {
	msg = strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(msg)
	return fmt.Sprintf("<tool_error tool=%q code=%q untrusted=\"true\">%s</tool_error>", safeName(name), safeName(string(code)), msg)
}

// safeName keeps a model-chosen name printable and attribute-safe.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

func limitSentence(stop string, cfg Config) string {
	switch stop {
	case StopMaxSteps:
		return fmt.Sprintf("the run reached its limit of %d model steps", cfg.MaxSteps)
	case StopMaxToolCalls:
		return fmt.Sprintf("the run reached its limit of %d tool calls", cfg.MaxToolCalls)
	case StopMaxTokens:
		return fmt.Sprintf("the run used up its budget of %d tokens", cfg.MaxTokens)
	default:
		return fmt.Sprintf("the run reached its time limit of %s", cfg.Timeout)
	}
}

// summary is the answer when a limit ended the run: what ran, what did not,
// and any text the model had written so far.
func summary(stop string, cfg Config, calls []ToolCall, notRun []string, partial string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "I stopped before finishing: %s.", limitSentence(stop, cfg))
	if len(calls) == 0 {
		b.WriteString("\n\nDone: no Veref operation was run.")
	} else {
		b.WriteString("\n\nDone:")
		for _, c := range calls {
			if c.Outcome == OutcomeOK {
				fmt.Fprintf(&b, "\n- %s (ok)", c.Name)
			} else {
				fmt.Fprintf(&b, "\n- %s (not done: %s)", c.Name, c.Outcome)
			}
		}
	}
	b.WriteString("\n\nNot done:")
	if len(notRun) > 0 {
		fmt.Fprintf(&b, "\n- these requested operations were not run: %s", strings.Join(notRun, ", "))
	}
	b.WriteString("\n- a complete answer to your question; ask again, or narrow the question, to continue.")
	if partial != "" {
		b.WriteString("\n\nWhat I had so far: " + partial)
	}
	return b.String()
}
