package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	openrouter "github.com/revrost/go-openrouter"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// Status says how a run ended, in Response.Status and the `done` event.
const (
	// StatusCompleted: the model answered.
	StatusCompleted = "completed"
	// StatusRequiresApproval: the model asked for calls that reach outside
	// Veref or destroy something; they wait in pendingApprovals.
	StatusRequiresApproval = "requires_approval"
	// StatusBudgetExhausted: a step, tool-call, token or time limit ended
	// the run; the answer says what was done and what was not.
	StatusBudgetExhausted = "budget_exhausted"
	// StatusFailed: the model provider failed after tools had run. It is
	// the status of the `done` event that follows an `error` event.
	StatusFailed = "failed"
)

// Why a call waits for approval.
const (
	ReasonOpenWorld   = "open_world"
	ReasonDestructive = "destructive"
)

// Decisions a caller gives a pending call.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// Outcomes of calls that approval kept from running, and audit outcomes of
// the decisions.
const (
	OutcomeApprovalRequired = store.Outcome(problem.ApprovalRequired)
	OutcomeDenied           = store.Outcome(problem.Denied)
	OutcomeExpired          = store.Outcome(problem.ApprovalExpired)
	auditApproved           = store.Outcome("APPROVED")
	auditAutoApproved       = store.Outcome("AUTO_APPROVED")
)

// DefaultApprovalTTL is how long a paused call waits for a decision.
const DefaultApprovalTTL = time.Hour

// maxNoteChars bounds a decision's note, which reaches the model and the audit trail.
const maxNoteChars = 1000

// PendingApproval is a call the model asked for that runs only once the
// caller approves it.
type PendingApproval struct {
	CallID    string          `json:"callId"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Reason    string          `json:"reason" enum:"open_world,destructive"`
	ExpiresAt time.Time       `json:"expiresAt"`
	// AuditEventID is the event that recorded the pause; decisions name it.
	AuditEventID string `json:"auditEventId,omitempty"`
}

// Approval is the caller's decision on one pending call.
type Approval struct {
	CallID   string `json:"callId"`
	Decision string `json:"decision" enum:"approve,deny"`
	Note     string `json:"note,omitempty"`
}

// pendingCall is a PendingApproval as the transcript keeps it: with the
// model's own id for the call, which its tool result must answer. The
// callId shown to callers is ours, unique across the conversation, so a
// model reusing "call_1" on a later turn cannot inherit an old decision.
type pendingCall struct {
	PendingApproval
	ToolCallID string `json:"toolCallId"`
}

// decidedCall remembers a decision so a repeated one runs nothing again.
type decidedCall struct {
	CallID   string    `json:"callId"`
	Decision string    `json:"decision"`
	KeyID    string    `json:"keyId"`
	At       time.Time `json:"at"`
}

// maxDecided bounds the decisions a transcript remembers.
const maxDecided = 200

// approvalReason says why a call must wait for approval, or "" when it may
// run at once. Unknown tools and tools outside the key's scopes run into
// Invoke's refusal instead: asking a person to approve what would be
// refused anyway helps nobody.
func (r *runner) approvalReason(name string, args json.RawMessage) string {
	t, ok := r.reg.Lookup(name)
	if !ok || !r.reg.Permits(r.p, name) {
		return ""
	}
	switch {
	case t.OpenWorldFor(args):
		return ReasonOpenWorld
	case t.Destructive:
		return ReasonDestructive
	}
	return ""
}

// pause records a call that waits for approval and returns what the
// response and the transcript keep of it.
func (r *runner) pause(ctx context.Context, tc openrouter.ToolCall, args json.RawMessage, reason string) (ToolCall, pendingCall) {
	callID := store.NewID("call")
	te := r.reg.Refuse(context.WithoutCancel(ctx), tools.Call{Principal: r.p, Surface: tools.SurfaceAgent,
		TraceID: r.traceID, Tool: tc.Function.Name, Input: args,
		AuditData: map[string]any{"callId": callID, "reason": reason, "conversationId": r.conversationID}},
		&tools.Error{Code: problem.ApprovalRequired, Message: "waiting for the caller's approval (" + reason + ")"})
	pc := pendingCall{ToolCallID: tc.ID, PendingApproval: PendingApproval{
		CallID: callID, Tool: tc.Function.Name, Arguments: args, Reason: reason,
		ExpiresAt: r.cfg.Now().UTC().Add(r.cfg.ApprovalTTL).Truncate(time.Second), AuditEventID: te.AuditID,
	}}
	rec := ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args, Outcome: OutcomeApprovalRequired,
		Error: te.Message, AuditEventID: te.AuditID, ApprovalCallID: callID}
	r.emit("tool_result", rec)
	return rec, pc
}

// autoApproved runs a call the caller pre-approved for this request,
// recording the pre-approval first so the trail shows it was not asked.
func (r *runner) autoApproved(ctx context.Context, tc openrouter.ToolCall, args json.RawMessage, reason string) (ToolCall, string) {
	c := tools.Call{Principal: r.p, Surface: tools.SurfaceAgent, TraceID: r.traceID, Tool: tc.Function.Name, Input: args,
		AuditData: map[string]any{"reason": reason, "autoApprove": true, "conversationId": r.conversationID}}
	evt, err := r.reg.Record(ctx, c, auditAutoApproved)
	if err != nil {
		// No trail, no call: an unaudited pre-approval is exactly what this guards against.
		rec := ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: args, Outcome: store.Outcome(problem.Unavailable),
			Error: "not run: its pre-approval could not be recorded"}
		return rec, toolError(tc.Function.Name, rec.Outcome, rec.Error)
	}
	rec, content := r.invoke(ctx, tc, args, map[string]any{"approval": map[string]any{
		"decision": auditAutoApproved, "auditEventId": evt}})
	rec.Approval = "auto_approved"
	return rec, content
}

// decide applies one decision on a pending call: audits it, then runs the
// call or tells the model it was denied. It returns the record and the tool
// message content.
func (r *runner) decide(ctx context.Context, pc pendingCall, a Approval) (ToolCall, string) {
	outcome := auditApproved
	if a.Decision == DecisionDeny {
		outcome = OutcomeDenied
	}
	data := map[string]any{"callId": pc.CallID, "decision": a.Decision, "reason": pc.Reason,
		"pausedAuditEventId": pc.AuditEventID, "conversationId": r.conversationID}
	if a.Note != "" {
		data["note"] = a.Note
	}
	c := tools.Call{Principal: r.p, Surface: tools.SurfaceAgent, TraceID: r.traceID, Tool: pc.Tool, Input: pc.Arguments, AuditData: data}
	tc := openrouter.ToolCall{ID: pc.ToolCallID, Type: openrouter.ToolTypeFunction,
		Function: openrouter.FunctionCall{Name: pc.Tool, Arguments: string(pc.Arguments)}}
	evt, err := r.reg.Record(ctx, c, outcome)
	if err != nil && a.Decision == DecisionApprove {
		rec := ToolCall{ID: pc.ToolCallID, Name: pc.Tool, Arguments: pc.Arguments, Outcome: store.Outcome(problem.Unavailable),
			Error: "not run: the approval could not be recorded", ApprovalCallID: pc.CallID}
		return rec, toolError(pc.Tool, rec.Outcome, rec.Error)
	}
	if a.Decision == DecisionDeny {
		msg := "the user denied this call; it was not run. Do not retry it; tell the user what you could not do."
		if a.Note != "" {
			msg += " The user's note: " + a.Note
		}
		rec := ToolCall{ID: pc.ToolCallID, Name: pc.Tool, Arguments: pc.Arguments, Outcome: OutcomeDenied,
			Error: "denied by the caller", AuditEventID: evt, Approval: "denied", ApprovalCallID: pc.CallID}
		r.emit("tool_result", rec)
		return rec, toolError(pc.Tool, OutcomeDenied, msg)
	}
	r.emit("tool_call", map[string]any{"id": tc.ID, "name": pc.Tool, "arguments": pc.Arguments})
	rec, content := r.invoke(ctx, tc, pc.Arguments, map[string]any{"approval": map[string]any{
		"decision": auditApproved, "auditEventId": evt, "pausedAuditEventId": pc.AuditEventID, "callId": pc.CallID}})
	rec.Approval, rec.ApprovalCallID = "approved", pc.CallID
	r.emit("tool_result", rec)
	return rec, content
}

// expire closes a pending call nobody decided in time; the model hears it
// was not run.
func (r *runner) expire(ctx context.Context, pc pendingCall) (ToolCall, string) {
	c := tools.Call{Principal: r.p, Surface: tools.SurfaceAgent, TraceID: r.traceID, Tool: pc.Tool, Input: pc.Arguments,
		AuditData: map[string]any{"callId": pc.CallID, "pausedAuditEventId": pc.AuditEventID, "conversationId": r.conversationID}}
	evt, _ := r.reg.Record(ctx, c, OutcomeExpired)
	msg := "not run: nobody approved this call before it expired at " + pc.ExpiresAt.Format(time.RFC3339)
	rec := ToolCall{ID: pc.ToolCallID, Name: pc.Tool, Arguments: pc.Arguments, Outcome: OutcomeExpired, Error: msg,
		AuditEventID: evt, ApprovalCallID: pc.CallID}
	return rec, toolError(pc.Tool, OutcomeExpired, msg)
}

// pendingOf lists what callers see of the transcript's pending calls.
func pendingOf(pcs []pendingCall) []PendingApproval {
	out := make([]PendingApproval, len(pcs))
	for i, pc := range pcs {
		out[i] = pc.PendingApproval
	}
	return out
}

// approvalAnswer is the answer of a paused run: what the model had said,
// and what waits for whom.
func approvalAnswer(partial string, pcs []pendingCall) string {
	var b strings.Builder
	if partial != "" {
		b.WriteString(partial + "\n\n")
	}
	b.WriteString("Before I continue I need your approval for:")
	for _, pc := range pcs {
		why := "it changes or removes data that cannot be restored"
		if pc.Reason == ReasonOpenWorld {
			why = "it reaches people or the public outside Veref"
		}
		fmt.Fprintf(&b, "\n- %s %s (%s)", pc.Tool, pc.Arguments, why)
	}
	return b.String()
}

// checkDecisions refuses decisions that must not run, before anything is
// changed: unknown ids (404), expired or already decided ones (409), calls
// the key's scopes do not cover (403).
func (h *handler) checkDecisions(p auth.Principal, t transcript, approvals []Approval, now time.Time) *failure {
	for _, a := range approvals {
		pc, ok := findPending(t.Pending, a.CallID)
		if !ok {
			for _, d := range t.Decided {
				if d.CallID == a.CallID {
					return newProblem(problem.Conflict,
						fmt.Sprintf("call %q was already decided (%s at %s); nothing was run again", a.CallID, d.Decision, d.At.Format(time.RFC3339)),
						"each pending call is decided once")
				}
			}
			return newProblem(problem.NotFound,
				fmt.Sprintf("no pending call %q in this conversation", a.CallID),
				"use a callId from the pendingApprovals of this conversation's last answer")
		}
		if !now.Before(pc.ExpiresAt) {
			return newProblem(problem.ApprovalExpired,
				fmt.Sprintf("the approval of call %q expired at %s; nothing was run", a.CallID, pc.ExpiresAt.Format(time.RFC3339)),
				"send a new message to continue; the model will hear that the call was not run")
		}
		if !h.reg.Permits(p, pc.Tool) {
			return newProblem(problem.ScopeMissing,
				fmt.Sprintf("this key may not call %s, so it may not decide on it", pc.Tool),
				"decide with a key whose scopes cover the call, such as the one that started the conversation")
		}
	}
	return nil
}

func findPending(pcs []pendingCall, callID string) (pendingCall, bool) {
	for _, pc := range pcs {
		if pc.CallID == callID {
			return pc, true
		}
	}
	return pendingCall{}, false
}

func validateApprovals(req Request) *failure {
	seen := map[string]bool{}
	for i, a := range req.Approvals {
		field := fmt.Sprintf("approvals[%d]", i)
		switch {
		case strings.TrimSpace(a.CallID) == "":
			return invalid(field+".callId", "callId is required")
		case a.Decision != DecisionApprove && a.Decision != DecisionDeny:
			return invalid(field+".decision", `decision must be "approve" or "deny"`)
		case len([]rune(a.Note)) > maxNoteChars:
			return invalid(field+".note", fmt.Sprintf("note is longer than %d characters", maxNoteChars))
		case seen[a.CallID]:
			return invalid(field+".callId", "callId "+a.CallID+" is decided twice in this request")
		}
		seen[a.CallID] = true
	}
	if len(req.Approvals) > 0 && req.ConversationID == "" {
		return invalid("conversationId", "approvals need the conversationId of the paused run")
	}
	return nil
}

// settlement is a pending call being closed by this request: decided by the
// caller, or expired. msg is the index of its tool message.
type settlement struct {
	pc      pendingCall
	a       Approval
	expired bool
	msg     int
}

// waiting refuses a new message while calls of the last turn still wait
// for a decision that has not expired: the model cannot go on without
// their results, and dropping them silently would hide what it asked for.
func waiting(t transcript, req Request, now time.Time) *failure {
	if req.Message == "" {
		return nil
	}
	decided := map[string]bool{}
	for _, a := range req.Approvals {
		decided[a.CallID] = true
	}
	var open []string
	for _, pc := range t.Pending {
		if !decided[pc.CallID] && now.Before(pc.ExpiresAt) {
			open = append(open, pc.CallID)
		}
	}
	if len(open) == 0 {
		return nil
	}
	return newProblem(problem.Conflict,
		"this conversation waits for decisions on calls "+strings.Join(open, ", "),
		`send "approvals": [{"callId": …, "decision": "approve"|"deny"}] for them (with or without a message)`)
}

// claim closes the pending calls this request decides, and those that
// expired if none is left waiting, and saves that before anything runs: of
// two requests deciding the same call only one saves, so an approved call
// runs once. Each closed call gets a placeholder result, replaced by the
// real one when it runs, so the stored transcript always pairs every call
// with a result even if the server stops in between.
func (h *handler) claim(ctx context.Context, p auth.Principal, conv store.Conversation, t transcript,
	approvals []Approval, now time.Time) (transcript, []settlement, store.Conversation, *failure) {
	byID := map[string]Approval{}
	for _, a := range approvals {
		byID[a.CallID] = a
	}
	var left []pendingCall
	var out []settlement
	for _, pc := range t.Pending {
		if a, ok := byID[pc.CallID]; ok {
			out = append(out, settlement{pc: pc, a: a})
		} else {
			left = append(left, pc)
		}
	}
	if allExpired(left, now) {
		for _, pc := range left {
			out = append(out, settlement{pc: pc, expired: true})
		}
		left = nil
	}
	if len(out) == 0 {
		return t, nil, conv, nil
	}
	msgs := append([]openrouter.ChatCompletionMessage(nil), t.Messages...)
	for i := range out {
		st := &out[i]
		decision := st.a.Decision
		if st.expired {
			decision = "expired"
		}
		t.Decided = append(t.Decided, decidedCall{CallID: st.pc.CallID, Decision: decision, KeyID: p.KeyID, At: now})
		st.msg = len(msgs)
		msgs = append(msgs, openrouter.ToolMessage(st.pc.ToolCallID,
			toolError(st.pc.Tool, OutcomeNotExecuted, "the decision on this call was recorded but its result was not")))
	}
	t.Messages, t.Pending = msgs, left
	if prob := h.save(ctx, p, &conv, t); prob != nil {
		if prob.Status == http.StatusConflict {
			prob.Detail = "another request decided or continued this conversation at the same time; this request ran nothing"
			prob.Hint = "read the conversation's state from that request's answer"
		} else {
			prob.Detail = "the decisions could not be saved, so nothing was run; try again shortly"
		}
		return t, nil, conv, prob
	}
	return t, out, conv, nil
}

func allExpired(pcs []pendingCall, now time.Time) bool {
	for _, pc := range pcs {
		if now.Before(pc.ExpiresAt) {
			return false
		}
	}
	return true
}

// checkAutoApprove refuses names that are not tools: a typo would otherwise
// silently pre-approve nothing, and the caller would wonder why it paused.
func (h *handler) checkAutoApprove(names []string) *failure {
	for i, n := range names {
		if _, ok := h.reg.Lookup(n); !ok {
			return invalid(fmt.Sprintf("autoApprove[%d]", i), fmt.Sprintf("%q is not a tool", n))
		}
	}
	return nil
}

func autoSet(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}
