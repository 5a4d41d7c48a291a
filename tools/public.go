package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
)

// Public holds the operations reached with a single-use token instead of an
// API key: a referee answering an invitation, anyone holding a share link.
type Public struct {
	store    store.Store
	cat      *catalogue
	response *inputSchema
}

// NewPublic returns the public operations over st.
func NewPublic(st store.Store, d Deps) *Public {
	if d.Now == nil {
		d.Now = time.Now
	}
	schemas := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	return &Public{store: st, cat: &catalogue{deps: d},
		response: newInputSchema(schemas, reflect.TypeFor[ResponseInput](), "ResponseInput")}
}

// linkToken matches the single-use token of an invitation or share link,
// however its path is cased or percent-encoded.
var linkToken = regexp.MustCompile(`(?i)((?:/|%2F)v1(?:/|%2F)+(?:referee|shares)(?:/|%2F)+)[0-9A-Za-z]{32}`)

// RedactLinks removes link tokens from text kept after the moment a link is
// shown (idempotent replays, agent transcripts): a link is shown once, and
// only its keyed hash is stored.
func RedactLinks(b []byte) []byte { return linkToken.ReplaceAll(b, []byte("${1}[redacted]")) }

// Invitation is what a referee sees when they open their link.
type Invitation struct {
	CandidateName string           `json:"candidateName"`
	Role          string           `json:"role,omitempty"`
	RefereeName   string           `json:"refereeName"`
	Relationship  string           `json:"relationship"`
	Questions     []store.Question `json:"questions"`
	DueDate       *time.Time       `json:"dueDate,omitempty"`
	ExpiresAt     time.Time        `json:"expiresAt"`
}

// ResponseInput is a referee's answers, or their refusal: the body of the
// form, validated by its schema as the tools' inputs are.
type ResponseInput struct {
	Answers []AnswerInput `json:"answers,omitempty" maxItems:"50"`
	Decline bool          `json:"decline,omitempty" doc:"Decline to give a reference instead of answering"`
	Reason  string        `json:"reason,omitempty" maxLength:"2000" doc:"Why, when declining"`
}

// AnswerInput is one answer; which of rating and text a question takes is
// checked against the request's questions.
type AnswerInput struct {
	QuestionID string `json:"questionId" maxLength:"100"`
	Rating     int    `json:"rating,omitempty" minimum:"0" maximum:"5"`
	Text       string `json:"text,omitempty" maxLength:"5000"`
}

// ResponseReceipt confirms a response.
type ResponseReceipt struct {
	Status store.InviteState `json:"status" enum:"responded,declined"`
}

// SharedReport is a report seen through a share link.
type SharedReport struct {
	Content   ReportContent `json:"content"`
	ExpiresAt time.Time     `json:"expiresAt"`
}

func (pub *Public) token(ctx context.Context, q store.Queries, kind store.TokenKind, token string) (store.PublicToken, error) {
	now := pub.cat.now()
	if len(token) != 32 {
		return store.PublicToken{}, linkErr(problem.LinkInvalid, kind)
	}
	t, err := q.PublicTokenByHash(ctx, pub.cat.tokenHash(kind, token))
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && t.Kind != kind):
		return t, linkErr(problem.LinkInvalid, kind)
	case err != nil:
		return t, err
	case t.RevokedAt != nil:
		return t, linkErr(problem.LinkRevoked, kind)
	case t.UsedAt != nil:
		return t, linkErr(problem.LinkUsed, kind)
	case !now.Before(t.ExpiresAt):
		return t, linkErr(problem.LinkExpired, kind)
	}
	return t, nil
}

func linkErr(code problem.Code, kind store.TokenKind) *Error {
	what := "invitation link"
	if kind == store.TokenShare {
		what = "share link"
	}
	msg := map[problem.Code]string{
		problem.LinkInvalid: "this " + what + " is not valid; check that it was copied whole",
		problem.LinkUsed:    "this " + what + " was already used; each invitation can be answered once",
		problem.LinkExpired: "this " + what + " has expired",
		problem.LinkRevoked: "this " + what + " no longer works: it was replaced by a newer one, or withdrawn",
	}[code]
	return &Error{Code: code, Message: msg, Hint: "ask the recruiter who sent it for a new link"}
}

// OpenInvitation shows a referee their questions and records that the link
// was opened.
func (pub *Public) OpenInvitation(ctx context.Context, token string) (Invitation, error) {
	var out Invitation
	err := pub.store.InTx(ctx, func(q store.Queries) error {
		t, err := pub.token(ctx, q, store.TokenInvitation, token)
		if err != nil {
			return err
		}
		ten := store.Tenancy{TenantID: t.TenantID, Environment: t.Environment}
		r, i, err := pub.loadReferee(ctx, q, ten, t)
		if err != nil {
			return err
		}
		cand, err := q.GetCandidate(ctx, ten, r.CandidateID)
		if err != nil {
			return err
		}
		ref := &r.Referees[i]
		out = Invitation{CandidateName: cand.Name, Role: cand.Role, RefereeName: ref.Name, Relationship: ref.Relationship,
			Questions: r.Questions, DueDate: r.DueDate, ExpiresAt: t.ExpiresAt}
		if ref.State != store.InviteSent && ref.State != store.InviteQueued {
			return nil
		}
		now := pub.cat.now()
		ref.State, ref.OpenedAt = store.InviteOpened, &now
		r.Status, r.UpdatedAt = deriveStatus(r), now
		if _, err := q.UpdateReference(ctx, ten, r); err != nil {
			return err
		}
		return q.InsertAudit(ctx, refereeEvent(ctx, ten, ref.ID, "invitation.open", r.ID, now))
	})
	return out, err
}

// SubmitResponse records a referee's answers (or refusal), sent as the
// form's JSON body, and spends the link.
func (pub *Public) SubmitResponse(ctx context.Context, token string, body []byte) (ResponseReceipt, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return ResponseReceipt{}, &Error{Code: problem.InvalidInput, Message: "the body must be a JSON object with answers, or decline: true",
			Errors: []FieldError{{Location: "body", Message: "required"}}}
	}
	v, err := pub.response.decode(body, nil)
	if err != nil {
		return ResponseReceipt{}, err
	}
	in := *v.(*ResponseInput)
	// Referees of one request answer into the same record, so two at the
	// same moment conflict on its version. A referee is a person on a web
	// form: retry here, with jitter, instead of asking them to.
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 20*time.Millisecond, 200*time.Millisecond
	return backoff.Retry(ctx, func() (ResponseReceipt, error) {
		out, err := pub.submitOnce(ctx, token, in)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return out, backoff.Permanent(err)
		}
		return out, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(6))
}

func (pub *Public) submitOnce(ctx context.Context, token string, in ResponseInput) (ResponseReceipt, error) {
	var out ResponseReceipt
	err := pub.store.InTx(ctx, func(q store.Queries) error {
		t, err := pub.token(ctx, q, store.TokenInvitation, token)
		if err != nil {
			return err
		}
		ten := store.Tenancy{TenantID: t.TenantID, Environment: t.Environment}
		r, i, err := pub.loadReferee(ctx, q, ten, t)
		if err != nil {
			return err
		}
		now := pub.cat.now()
		ref := &r.Referees[i]
		if len(in.Answers) > len(r.Questions) {
			return Invalid("answers", fmt.Sprintf("there are %d questions, and %d answers", len(r.Questions), len(in.Answers)))
		}
		if in.Decline {
			if len(in.Answers) > 0 {
				return Invalid("answers", "send answers or decline, not both")
			}
			ref.State, ref.DeclinedAt, ref.DeclineReason = store.InviteDeclined, &now, strings.TrimSpace(in.Reason)
		} else {
			answers, err := checkAnswers(r.Questions, in.Answers)
			if err != nil {
				return err
			}
			ref.State, ref.RespondedAt, ref.Answers = store.InviteResponded, &now, answers
		}
		out.Status = ref.State
		t.UsedAt = &now
		if err := q.UpdatePublicToken(ctx, t); err != nil {
			return err
		}
		r.Status, r.UpdatedAt = deriveStatus(r), now
		if _, err := q.UpdateReference(ctx, ten, r); err != nil {
			return err
		}
		return q.InsertAudit(ctx, refereeEvent(ctx, ten, ref.ID, "invitation."+string(ref.State), r.ID, now))
	})
	return out, err
}

// ViewShare returns the report a share link opens.
func (pub *Public) ViewShare(ctx context.Context, token string) (SharedReport, error) {
	t, err := pub.token(ctx, pub.store, store.TokenShare, token)
	if err != nil {
		return SharedReport{}, err
	}
	rep, err := pub.store.GetReport(ctx, store.Tenancy{TenantID: t.TenantID, Environment: t.Environment}, t.TargetID)
	if err != nil {
		return SharedReport{}, notFound(err, "report", t.TargetID)
	}
	v, err := reportView(rep)
	return SharedReport{Content: v.Content, ExpiresAt: t.ExpiresAt}, err
}

func (pub *Public) loadReferee(ctx context.Context, q store.Queries, ten store.Tenancy, t store.PublicToken) (store.ReferenceRequest, int, error) {
	r, err := q.GetReference(ctx, ten, t.TargetID)
	if err != nil {
		return r, 0, err
	}
	if r.Status == store.RequestCancelled {
		return r, 0, &Error{Code: problem.LinkRevoked, Message: "this reference request was cancelled; no answer is needed"}
	}
	for i := range r.Referees {
		if r.Referees[i].ID == t.SubID {
			return r, i, nil
		}
	}
	return r, 0, linkErr(problem.LinkInvalid, store.TokenInvitation)
}

// refereeEvent is a referee's action on the request, under the request's trace.
func refereeEvent(ctx context.Context, ten store.Tenancy, refereeID, action, requestID string, now time.Time) store.AuditEvent {
	return store.NewAuditEvent(ten, store.Actor{Kind: store.ActorReferee, ID: refereeID}, store.SurfacePublic,
		telemetry.TraceID(ctx), action, now).On("reference_request", requestID)
}

// checkAnswers requires a 1-5 rating for every rating question and allows
// text for any; unknown or repeated questions are refused.
func checkAnswers(qs []store.Question, in []AnswerInput) ([]store.Answer, error) {
	kinds := map[string]string{}
	for _, q := range qs {
		kinds[q.ID] = q.Kind
	}
	seen := map[string]bool{}
	var out []store.Answer
	for i, a := range in {
		field := fmt.Sprintf("answers[%d]", i)
		kind, ok := kinds[a.QuestionID]
		switch {
		case !ok:
			return nil, Invalid(field+".questionId", "no question "+a.QuestionID+" in this request")
		case seen[a.QuestionID]:
			return nil, Invalid(field+".questionId", "question "+a.QuestionID+" is answered twice")
		case kind == "rating" && (a.Rating < 1 || a.Rating > 5):
			return nil, Invalid(field+".rating", "a rating from 1 to 5 is required")
		case kind == "text" && a.Rating != 0:
			return nil, Invalid(field+".rating", "question "+a.QuestionID+" takes text, not a rating")
		}
		seen[a.QuestionID] = true
		out = append(out, store.Answer{QuestionID: a.QuestionID, Rating: a.Rating, Text: strings.TrimSpace(a.Text)})
	}
	for _, q := range qs {
		if q.Kind == "rating" && !seen[q.ID] {
			return nil, Invalid("answers", "question "+q.ID+" needs a rating from 1 to 5: "+q.Text)
		}
	}
	return out, nil
}
