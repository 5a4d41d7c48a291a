// Package agent is Ask Veref: a tool-calling loop over OpenRouter's model
// chain, served at POST /v1/api/agent. It is an adapter over the tool
// registry like REST and MCP: every call the model makes goes through
// tools.Registry.Invoke with the caller's principal, so scopes, tenancy and
// audit are exactly those of the other surfaces.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	openrouter "github.com/revrost/go-openrouter"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// MaxMessageChars bounds the question, in characters.
const MaxMessageChars = 8000

// ConversationStore keeps Ask Veref threads. store.Store satisfies it; the
// agent needs nothing else from storage, because everything else it touches
// goes through the tool registry.
type ConversationStore interface {
	GetConversation(ctx context.Context, ten store.Tenancy, id string) (store.Conversation, error)
	SaveConversation(ctx context.Context, ten store.Tenancy, c store.Conversation) (store.Conversation, error)
}

// Request is the body of POST /v1/api/agent.
type Request struct {
	Message        string `json:"message,omitempty"`
	ConversationID string `json:"conversationId,omitempty"`
	// Approvals decide the calls a paused run waits for; message is then optional.
	Approvals []Approval `json:"approvals,omitempty"`
	// AutoApprove names tools whose outward or destructive calls may run
	// without pausing, for this request only.
	AutoApprove []string `json:"autoApprove,omitempty"`
}

type handler struct {
	reg   *tools.Registry
	convs ConversationStore
	cfg   Config
	prov  *provider
}

// NewHandler serves POST /v1/api/agent. It expects api.Guard in front of
// it, which authenticates the key and puts the principal and trace id in
// the request context.
func NewHandler(reg *tools.Registry, convs ConversationStore, cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	h := &handler{reg: reg, convs: convs, cfg: cfg}
	if cfg.APIKey != "" {
		h.prov = newProvider(cfg)
	}
	return h
}

// failure is a problem answer plus what the run did before it failed, so
// a caller can tell what changed before retrying, and where the run was kept.
type failure struct {
	*problem.Problem
	ConversationID string
	ToolCalls      []ToolCall
}

func newProblem(code problem.Code, detail, hint string) *failure {
	return &failure{Problem: problem.New(code, detail).WithHint(hint)}
}

// doc is the problem document, with the run's calls as extension members.
func (f *failure) doc(traceID string) *problem.Problem {
	p := f.Problem
	p.TraceID = traceID
	if f.ConversationID != "" || len(f.ToolCalls) > 0 {
		p.Extensions = map[string]any{}
		if f.ConversationID != "" {
			p.Extensions["conversationId"] = f.ConversationID
		}
		if len(f.ToolCalls) > 0 {
			p.Extensions["toolCalls"] = f.ToolCalls
		}
	}
	return problem.Normalize(p)
}

func writeProblem(w http.ResponseWriter, traceID string, f *failure) {
	problem.Write(w, traceID, f.doc(traceID))
}

// turn is one request, checked, with the decisions it makes claimed.
type turn struct {
	p       auth.Principal
	req     Request
	conv    store.Conversation
	past    transcript
	settled []settlement
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	traceID := tools.RequestMetaFrom(ctx).TraceID
	t, f := h.prepare(w, r)
	if f != nil {
		writeProblem(w, traceID, f)
		return
	}
	// A run may outlast a server-wide write timeout; give it its budget.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.cfg.Timeout + 30*time.Second))
	out := &responder{w: w, traceID: traceID}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		out.ev = startEventStream(w)
		defer out.ev.stop()
	}

	run := &runner{reg: h.reg, prov: h.prov, cfg: h.cfg, p: t.p, traceID: traceID, emit: out.emit,
		streaming: out.ev != nil, auto: autoSet(t.req.AutoApprove), conversationID: t.conv.ID}
	res, msgs, runErr := h.execute(ctx, t, run)
	var pe *providerError
	switch {
	case runErr == nil:
	case errors.As(runErr, &pe) && len(pe.toolCalls) > 0:
		// Operations ran before the provider failed: keep the run, so a
		// retry can continue it instead of repeating them.
		msgs = append(msgs, openrouter.ChatCompletionMessage{Role: openrouter.ChatMessageRoleAssistant,
			Content: openrouter.Content{Text: "(The model provider failed before I could answer; the tool results above stand.)"}})
	case errors.As(runErr, &pe):
		out.fail(h.providerProblem(pe, ""))
		return
	case ctx.Err() != nil:
		return // the caller is gone; nobody to answer
	default:
		out.fail(newProblem(problem.Internal, "the agent failed unexpectedly", ""))
		return
	}

	t.past.Messages = msgs
	t.past.Tools = usedTools(t.past.Tools, res.ToolCalls)
	if f := h.save(ctx, t.p, &t.conv, t.past); f != nil {
		f.ToolCalls = res.ToolCalls
		out.fail(f)
		return
	}
	if pe != nil {
		out.fail(h.providerProblem(pe, t.conv.ID))
		return
	}
	res.ConversationID = t.conv.ID
	out.done(res)
}

// prepare authenticates, reads and checks the request, loads the
// conversation it continues and claims the decisions it makes. Every
// refusal happens here, before anything runs or any stream starts.
func (h *handler) prepare(w http.ResponseWriter, r *http.Request) (*turn, *failure) {
	ctx := r.Context()
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, newProblem(problem.AuthMissing, "no authenticated API key", "send Authorization: Bearer vrf_…")
	}
	if h.prov == nil {
		return nil, newProblem(problem.AgentNotConfigured,
			"Ask Veref is not configured on this server: it has no model provider key.",
			"the operator must set OPENROUTER_API_KEY to an OpenRouter API key and restart the server")
	}
	req, f := decodeRequest(w, r)
	if f == nil {
		f = h.checkAutoApprove(req.AutoApprove)
	}
	if f != nil {
		return nil, f
	}
	now := h.cfg.Now().UTC()
	t := &turn{p: p, req: req}
	if t.conv, t.past, f = h.load(ctx, p, req.ConversationID); f != nil {
		return nil, f
	}
	if len(req.Approvals) > 0 {
		if f = h.checkDecisions(p, t.past, req.Approvals, now); f != nil {
			return nil, f
		}
	}
	if f = waiting(t.past, req, now); f != nil {
		return nil, f
	}
	if t.conv.ID != "" && (len(req.Approvals) > 0 || len(t.past.Pending) > 0) {
		if t.past, t.settled, t.conv, f = h.claim(ctx, p, t.conv, t.past, req.Approvals, now); f != nil {
			return nil, f
		}
	}
	if t.conv.ID == "" {
		t.conv = store.Conversation{ID: store.NewID("conv"), CreatedAt: now}
	}
	return t, nil
}

// execute applies the claimed decisions, then runs the model unless calls
// of the turn still wait. It returns the response and the history to store.
func (h *handler) execute(ctx context.Context, t *turn, run *runner) (Response, []openrouter.ChatCompletionMessage, error) {
	msgs := t.past.Messages
	res := Response{ToolCalls: []ToolCall{}}
	for _, st := range t.settled {
		var rec ToolCall
		var content string
		if st.expired {
			rec, content = run.expire(ctx, st.pc)
		} else {
			rec, content = run.decide(ctx, st.pc, st.a)
		}
		msgs[st.msg].Content = openrouter.Content{Text: content}
		res.ToolCalls = append(res.ToolCalls, rec)
	}
	if len(t.past.Pending) > 0 {
		// The model cannot go on without the results of every call.
		res.TraceID, res.StopReason, res.Status = run.traceID, StopApproval, StatusRequiresApproval
		res.PendingApprovals = pendingOf(t.past.Pending)
		res.Answer = approvalAnswer("", t.past.Pending)
		return res, msgs, nil
	}
	if t.req.Message != "" {
		msgs = append(msgs, openrouter.UserMessage(t.req.Message))
	}
	res, msgs, err := run.run(ctx, msgs, res)
	countRun(ctx, res, err)
	t.past.Pending = run.pending
	return res, msgs, err
}

// responder answers as JSON or, when the caller asked for it, as
// server-sent events.
type responder struct {
	w       http.ResponseWriter
	ev      *eventStream
	traceID string
}

func (o *responder) emit(event string, data any) {
	if o.ev != nil {
		o.ev.send(event, data)
	}
}

// fail answers a failed run. A stream always ends with done, here with
// status failed after the error event.
func (o *responder) fail(f *failure) {
	if o.ev == nil {
		writeProblem(o.w, o.traceID, f)
		return
	}
	o.ev.send("error", f.doc(o.traceID))
	o.ev.send("done", Response{ConversationID: f.ConversationID, ToolCalls: orEmpty(f.ToolCalls),
		Status: StatusFailed, StopReason: StatusFailed, TraceID: o.traceID})
}

func (o *responder) done(res Response) {
	if o.ev == nil {
		o.w.Header().Set("Content-Type", "application/json")
		o.w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(o.w).Encode(res)
		return
	}
	// answer_delta events went out as the model wrote; done carries the
	// answer whole (a summary when the run did not complete).
	if res.Status == StatusRequiresApproval {
		o.ev.send("approval_required", map[string]any{"conversationId": res.ConversationID, "pendingApprovals": res.PendingApprovals})
	}
	o.ev.send("done", res)
}

func orEmpty(calls []ToolCall) []ToolCall {
	if calls == nil {
		return []ToolCall{}
	}
	return calls
}

// load reads the conversation a request continues, if any, and checks it
// belongs to p and that p may read everything it holds.
func (h *handler) load(ctx context.Context, p auth.Principal, id string) (store.Conversation, transcript, *failure) {
	var past transcript
	if id == "" {
		return store.Conversation{}, past, nil
	}
	c, err := h.convs.GetConversation(ctx, store.TenancyOf(p), id)
	// Another recruiter's thread in the same tenancy answers exactly
	// like a missing one, so ids reveal nothing.
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.RecruiterID != p.RecruiterID) {
		return c, past, newProblem(problem.NotFound,
			fmt.Sprintf("conversation %q was not found", id), "omit conversationId to start a new conversation")
	}
	if err != nil {
		return c, past, newProblem(problem.Unavailable, "storage is unavailable; try again shortly", "")
	}
	if past, err = decodeTranscript(c.Messages); err != nil {
		return c, past, newProblem(problem.Internal,
			"this conversation's stored transcript cannot be read", "omit conversationId to start a new conversation")
	}
	if missing := h.unreadable(p, past.Tools); len(missing) > 0 {
		return c, past, newProblem(problem.ScopeMissing,
			"this conversation holds results of operations this key may not use: "+strings.Join(missing, ", "),
			"continue it with the key that started it, or omit conversationId to start a new conversation")
	}
	return c, past, nil
}

// save stores the conversation, versioned, so two requests continuing it
// at once cannot both win. The answer exists even if the caller just left.
func (h *handler) save(ctx context.Context, p auth.Principal, conv *store.Conversation, t transcript) *failure {
	blob, err := encodeTranscript(t)
	if err != nil {
		return newProblem(problem.Internal, "the conversation could not be encoded", "")
	}
	conv.RecruiterID, conv.KeyID, conv.Messages, conv.UpdatedAt = p.RecruiterID, p.KeyID, blob, h.cfg.Now().UTC()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	saved, err := h.convs.SaveConversation(sctx, store.TenancyOf(p), *conv)
	cancel()
	switch {
	case errors.Is(err, store.ErrConflict):
		return newProblem(problem.Conflict,
			"the conversation was continued by another request at the same time; this answer was not saved, though the tool calls listed ran",
			"send one message at a time per conversation")
	case err != nil:
		return newProblem(problem.Unavailable,
			"the answer could not be saved: storage is unavailable; the tool calls listed ran", "try again shortly")
	}
	*conv = saved
	return nil
}

func (h *handler) providerProblem(pe *providerError, conversationID string) *failure {
	detail := "the model provider failed for every model in the chain; last error from " + pe.chain.Error()
	if n := len(pe.toolCalls); n > 0 {
		detail += fmt.Sprintf("; %d tool call(s) had already run, listed in toolCalls", n)
	}
	prob := newProblem(pe.chain.Code(), detail,
		"try again shortly; if it persists, check OpenRouter's status and the VEREF_AGENT_MODELS chain")
	if len(pe.toolCalls) > 0 {
		prob.ToolCalls, prob.ConversationID = pe.toolCalls, conversationID
		prob.Hint = "send conversationId to continue this run rather than repeat its tool calls"
	}
	return prob
}

// unreadable lists the tools in a conversation's history that p may not use.
func (h *handler) unreadable(p auth.Principal, used []string) []string {
	var out []string
	for _, name := range used {
		// Unknown names (a tool since removed) hold nothing a key could not see.
		if _, known := h.reg.Lookup(name); known && !h.reg.Permits(p, name) {
			out = append(out, name)
		}
	}
	return out
}

// usedTools adds the tools that ran this run to those before. A failed
// call counts too: its error can carry data (a CONFLICT naming a state).
// Only refusals that never reached a tool's handler do not.
func usedTools(before []string, calls []ToolCall) []string {
	seen := map[string]bool{}
	for _, n := range before {
		seen[n] = true
	}
	out := before
	for _, c := range calls {
		switch c.Outcome {
		case store.Outcome(problem.ScopeMissing), OutcomeDuplicate, OutcomeNotExecuted, OutcomeApprovalRequired, OutcomeDenied, OutcomeExpired:
			continue
		}
		if !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c.Name)
		}
	}
	return out
}

func decodeRequest(w http.ResponseWriter, r *http.Request) (Request, *failure) {
	var req Request
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 128<<10))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return req, newProblem(problem.TooLarge, "the request body is too large",
			fmt.Sprintf("keep message under %d characters", MaxMessageChars))
	}
	if len(bytes.TrimSpace(body)) > 0 && !problem.IsJSONMediaType(r.Header.Get("Content-Type")) {
		return req, newProblem(problem.UnsupportedMediaType, "the request body must be JSON", "send Content-Type: application/json")
	}
	// Text the decoder would mangle, or PostgreSQL could not keep in the
	// transcript, is refused rather than changed.
	if te := tools.CheckText(body, "body"); te != nil {
		return req, invalid(strings.TrimPrefix(te.Errors[0].Location, "body."), te.Message)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(&req)
	}
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	switch {
	case errors.Is(err, io.EOF):
		return req, invalid("message", "the body must be a JSON object with a message")
	case err != nil:
		return req, invalid("", "the body is not valid: "+err.Error())
	}
	req.Message = strings.TrimSpace(req.Message)
	req.ConversationID = strings.TrimSpace(req.ConversationID)
	for field, v := range map[string]string{"message": req.Message, "conversationId": req.ConversationID} {
		if strings.ContainsRune(v, 0) {
			return req, invalid(field, "text may not contain NUL characters")
		}
	}
	if p := validateApprovals(req); p != nil {
		return req, p
	}
	switch n := utf8.RuneCountInString(req.Message); {
	case n == 0 && len(req.Approvals) > 0:
	case n == 0:
		return req, invalid("message", "message is required")
	case n > MaxMessageChars:
		return req, invalid("message", fmt.Sprintf("message is %d characters; the limit is %d", n, MaxMessageChars))
	}
	return req, nil
}

func invalid(field, msg string) *failure {
	p := newProblem(problem.InvalidInput, msg, "")
	if field != "" {
		p.Hint = "check the " + field + " field"
		p.WithField("body."+field, msg)
	}
	return p
}

// eventStream writes server-sent events. Writes come from the run and from
// the keep-alive ticker, hence the lock.
type eventStream struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	done chan struct{}
	wg   sync.WaitGroup
}

// keepAlive is shorter than the idle timeouts of common proxies, which
// would otherwise cut the stream while a model thinks.
const keepAlive = 15 * time.Second

func startEventStream(w http.ResponseWriter) *eventStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &eventStream{w: w, rc: http.NewResponseController(w), done: make(chan struct{})}
	_ = s.rc.Flush()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(keepAlive)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.mu.Lock()
				_, _ = io.WriteString(s.w, ": keep-alive\n\n")
				_ = s.rc.Flush()
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *eventStream) send(event string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b)
	_ = s.rc.Flush()
}

func (s *eventStream) stop() {
	close(s.done)
	s.wg.Wait()
}
