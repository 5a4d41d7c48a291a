package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// RefereeInput is one person asked for a reference.
type RefereeInput struct {
	Name         string `json:"name" minLength:"1" maxLength:"200"`
	Email        string `json:"email" minLength:"3" maxLength:"254"`
	Relationship string `json:"relationship" enum:"manager,peer,direct_report,client,other" doc:"How the referee knows the candidate"`
	Company      string `json:"company,omitempty" maxLength:"200"`
}

// QuestionInput is a custom question.
type QuestionInput struct {
	Text string `json:"text" minLength:"1" maxLength:"500"`
	Kind string `json:"kind" enum:"rating,text" doc:"rating: 1 to 5; text: free text"`
}

// ReferencesStartInput starts a reference check.
type ReferencesStartInput struct {
	CandidateID     string           `json:"candidateId,omitempty" maxLength:"100" doc:"An existing candidate. Give this or candidate, not both."`
	Candidate       *CandidateFields `json:"candidate,omitempty" doc:"A new candidate, created with the request."`
	Referees        []RefereeInput   `json:"referees" minItems:"1" maxItems:"10"`
	DueDate         *time.Time       `json:"dueDate,omitempty" doc:"When answers are due; invitation links expire then (default 14 days)"`
	Questions       []QuestionInput  `json:"questions,omitempty" maxItems:"20" doc:"Custom questions; Veref's standard set when absent"`
	SendInvitations bool             `json:"sendInvitations,omitempty" doc:"Send the invitation e-mails now (default false: the request stays a draft)"`
}

// ReferencesListInput filters the list.
type ReferencesListInput struct {
	Paging
	CandidateID string `json:"candidateId,omitempty" query:"candidateId" maxLength:"100"`
	Status      string `json:"status,omitempty" query:"status" enum:"draft,sent,in_progress,completed,cancelled"`
}

// SendInvitationsInput (re)sends invitations.
type SendInvitationsInput struct {
	ID         string   `json:"id" path:"id" minLength:"1" maxLength:"100"`
	RefereeIDs []string `json:"refereeIds,omitempty" maxItems:"10" doc:"Referees to invite; default every referee who has not answered or declined"`
}

// CancelInput cancels a request.
type CancelInput struct {
	ID     string `json:"id" path:"id" minLength:"1" maxLength:"100"`
	Reason string `json:"reason,omitempty" maxLength:"500"`
}

// InvitationLink is returned for test-environment keys only, in place of the
// e-mail the test environment never sends, so integrations can be exercised
// end to end.
type InvitationLink struct {
	RefereeID string    `json:"refereeId"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Reference is a reference request as callers see it.
type Reference struct {
	store.ReferenceRequest
	TestInvitationLinks []InvitationLink `json:"testInvitationLinks,omitempty" doc:"Test environment only: the links the invitation e-mails would carry"`
}

var defaultQuestions = []store.Question{
	{ID: "q1", Kind: "rating", Text: "How would you rate the candidate's overall performance?"},
	{ID: "q2", Kind: "rating", Text: "How well did the candidate work with others?"},
	{ID: "q3", Kind: "rating", Text: "How reliably did the candidate meet their commitments?"},
	{ID: "q4", Kind: "rating", Text: "How strongly would you recommend hiring the candidate?"},
	{ID: "q5", Kind: "text", Text: "What are the candidate's main strengths?"},
	{ID: "q6", Kind: "text", Text: "Where could the candidate grow?"},
}

const defaultInviteTTL = 14 * 24 * time.Hour

func (c *catalogue) references() {
	refWrite := auth.AnyOf(auth.ReferencesWrite)
	Add(c.r, Spec{
		Name: "references_list", Title: "List reference requests",
		Description: "Lists reference requests, newest first, with each referee's invitation state. Filter by candidateId or status (draft, sent, in_progress, completed, cancelled).",
		Policy:      auth.Reads(auth.ReferencesRead), ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/references"}, Target: "reference_request",
	}, func(ctx context.Context, p auth.Principal, in ReferencesListInput) (List[store.ReferenceRequest], error) {
		rows, next, err := Q(ctx).ListReferences(ctx, store.TenancyOf(p), store.ReferenceFilter{CandidateID: in.CandidateID, Status: store.RequestStatus(in.Status)}, in.page())
		for i := range rows {
			refresh(&rows[i], c.now())
		}
		return listOf(rows, next), err
	})
	Add(c.r, Spec{
		Name: "references_get", Title: "Get a reference request",
		Description: "Returns one reference request with its questions, referees, invitation states (pending; queued when this server only logs live e-mail; sent, opened, responded, declined, expired) and the answers received.",
		Policy:      auth.Reads(auth.ReferencesRead), ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/references/{id}"}, Target: "reference_request",
	}, func(ctx context.Context, p auth.Principal, in IDInput) (store.ReferenceRequest, error) {
		r, err := Q(ctx).GetReference(ctx, store.TenancyOf(p), in.ID)
		refresh(&r, c.now())
		return r, notFound(err, "reference request", in.ID)
	})
	Add(c.r, Spec{
		Name: "references_start", Title: "Start a reference check",
		Description: "Starts a reference check for an existing candidate (candidateId) or a new one (candidate), with 1 to 10 referees. " +
			"Set sendInvitations to e-mail each referee a single-use link; otherwise the request stays a draft until references_send_invitations.",
		Policy: refWrite, Mutates: true, OpenWorld: true, OpenWorldWhen: "sendInvitations",
		HTTP: Binding{Method: "POST", Path: "/references", Status: 201}, Target: "reference_request",
	}, c.startReference)
	Add(c.r, Spec{
		Name: "references_send_invitations", Title: "Send or resend invitations",
		Description: "E-mails invitation links to the request's referees (by default every referee who has not answered or declined). " +
			"Resending replaces the previous link, which stops working.",
		// Destructive: resending invalidates the links already sent.
		Policy: refWrite, Mutates: true, OpenWorld: true, Destructive: true,
		HTTP: Binding{Method: "POST", Path: "/references/{id}/invitations"}, Target: "reference_request",
	}, func(ctx context.Context, p auth.Principal, in SendInvitationsInput) (Reference, error) {
		q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
		r, err := q.GetReference(ctx, ten, in.ID)
		if err != nil {
			return Reference{}, notFound(err, "reference request", in.ID)
		}
		refresh(&r, now)
		if r.Status == store.RequestCancelled || r.Status == store.RequestCompleted {
			return Reference{}, Conflict("the request is " + string(r.Status) + "; invitations can no longer be sent")
		}
		targets, err := pickReferees(r, in.RefereeIDs)
		if err != nil {
			return Reference{}, err
		}
		out, err := c.invite(ctx, p, &r, targets, now)
		if err != nil {
			return Reference{}, err
		}
		saved, err := q.UpdateReference(ctx, ten, r)
		out.ReferenceRequest = saved
		return out, err
	})
	Add(c.r, Spec{
		Name: "references_cancel", Title: "Cancel a reference request",
		Description: "Cancels a reference request: outstanding invitation links stop working. Cancelling a cancelled request changes nothing.",
		Policy:      refWrite, Mutates: true, Destructive: true, Idempotent: true,
		HTTP: Binding{Method: "POST", Path: "/references/{id}/cancel"}, Target: "reference_request",
	}, func(ctx context.Context, p auth.Principal, in CancelInput) (store.ReferenceRequest, error) {
		q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
		r, err := q.GetReference(ctx, ten, in.ID)
		if err != nil {
			return r, notFound(err, "reference request", in.ID)
		}
		switch r.Status {
		case store.RequestCancelled:
			return r, nil
		case store.RequestCompleted:
			return r, Conflict("the request is completed and cannot be cancelled")
		}
		if err := q.RevokePublicTokens(ctx, ten, store.TokenInvitation, r.ID, "", now); err != nil {
			return r, err
		}
		r.Status = store.RequestCancelled
		r.UpdatedAt = now
		return q.UpdateReference(ctx, ten, r)
	})
}

func (c *catalogue) startReference(ctx context.Context, p auth.Principal, in ReferencesStartInput) (Reference, error) {
	q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
	var cand store.Candidate
	var err error
	switch {
	case in.CandidateID != "" && in.Candidate != nil:
		return Reference{}, Invalid("candidateId", "give candidateId or candidate, not both")
	case in.CandidateID != "":
		if cand, err = q.GetCandidate(ctx, ten, in.CandidateID); err != nil {
			return Reference{}, notFound(err, "candidate", in.CandidateID)
		}
	case in.Candidate != nil:
		if cand, err = c.createCandidate(ctx, p, *in.Candidate, "candidate."); err != nil {
			return Reference{}, err
		}
	default:
		return Reference{}, Invalid("candidateId", "give candidateId (an existing candidate) or candidate (a new one)")
	}
	if in.DueDate != nil && !in.DueDate.After(now) {
		return Reference{}, Invalid("dueDate", "dueDate must be in the future")
	}
	r := store.ReferenceRequest{ID: store.NewID("ref"), CandidateID: cand.ID, RecruiterID: p.RecruiterID,
		Status: store.RequestDraft, DueDate: in.DueDate, CreatedAt: now, UpdatedAt: now}
	if len(in.Questions) == 0 {
		r.Questions = defaultQuestions
	}
	for i, qi := range in.Questions {
		r.Questions = append(r.Questions, store.Question{ID: fmt.Sprintf("q%d", i+1), Text: strings.TrimSpace(qi.Text), Kind: qi.Kind})
	}
	seen := map[string]bool{}
	for i, ri := range in.Referees {
		email := strings.ToLower(strings.TrimSpace(ri.Email))
		if err := checkEmail(fmt.Sprintf("referees[%d].email", i), email); err != nil {
			return Reference{}, err
		}
		if seen[email] {
			return Reference{}, Invalid(fmt.Sprintf("referees[%d].email", i), "the same referee is listed twice")
		}
		if cand.Email != "" && strings.EqualFold(cand.Email, email) {
			return Reference{}, Invalid(fmt.Sprintf("referees[%d].email", i), "the candidate cannot be their own referee")
		}
		seen[email] = true
		r.Referees = append(r.Referees, store.Referee{ID: store.NewID("rfe"), Name: strings.TrimSpace(ri.Name), Email: email,
			Relationship: ri.Relationship, Company: strings.TrimSpace(ri.Company), State: store.InvitePending})
	}
	out := Reference{}
	if in.SendInvitations {
		if out, err = c.invite(ctx, p, &r, allIndexes(r), now); err != nil {
			return Reference{}, err
		}
	}
	if err := q.InsertReference(ctx, ten, r); err != nil {
		return Reference{}, err
	}
	out.ReferenceRequest = r
	return out, nil
}

// invite issues a fresh single-use link to each referee at idx, revoking any
// earlier one, and queues the e-mail in the same transaction.
func (c *catalogue) invite(ctx context.Context, p auth.Principal, r *store.ReferenceRequest, idx []int, now time.Time) (Reference, error) {
	q, ten := Q(ctx), store.TenancyOf(p)
	cand, err := q.GetCandidate(ctx, ten, r.CandidateID)
	if err != nil {
		return Reference{}, err
	}
	expires := now.Add(defaultInviteTTL)
	if r.DueDate != nil && r.DueDate.After(now) {
		expires = r.DueDate.UTC()
	}
	var out Reference
	for _, i := range idx {
		ref := &r.Referees[i]
		if err := q.RevokePublicTokens(ctx, ten, store.TokenInvitation, r.ID, ref.ID, now); err != nil {
			return out, err
		}
		token := auth.RandomString(32)
		if err := q.InsertPublicToken(ctx, store.PublicToken{Hash: c.tokenHash(store.TokenInvitation, token), Kind: store.TokenInvitation,
			TenantID: ten.TenantID, Environment: ten.Environment, TargetID: r.ID, SubID: ref.ID, CreatedAt: now, ExpiresAt: expires}); err != nil {
			return out, err
		}
		link := c.deps.PublicURL + "/v1/referee/" + token
		ref.State, ref.InvitedAt, ref.InviteExpiresAt, ref.OpenedAt = c.invitedState(ten), &now, &expires, nil
		ref.InvitationsSent++
		if err := q.InsertOutbox(ctx, ten, store.OutboxMessage{ID: store.NewID("msg"), TenantID: ten.TenantID, Environment: ten.Environment,
			To: ref.Email, Subject: "Reference request for " + cand.Name, Body: invitationBody(ref.Name, cand, link, expires),
			CreatedAt: now, NextAttemptAt: now}); err != nil {
			return out, err
		}
		if ten.Environment == auth.Test {
			out.TestInvitationLinks = append(out.TestInvitationLinks, InvitationLink{RefereeID: ref.ID, URL: link, ExpiresAt: expires})
		}
	}
	r.Status = deriveStatus(*r)
	r.UpdatedAt = now
	return out, nil
}

// invitedState is what an invitation just queued for e-mail is: sent,
// unless live e-mail goes only to the log.
func (c *catalogue) invitedState(ten store.Tenancy) store.InviteState {
	if ten.Environment == auth.Live && c.deps.MailLogOnly {
		return store.InviteQueued
	}
	return store.InviteSent
}

func (c *catalogue) tokenHash(kind store.TokenKind, token string) []byte {
	return c.deps.Hasher.Hash(string(kind) + "\x00" + token)
}

func invitationBody(name string, cand store.Candidate, link string, expires time.Time) string {
	role := ""
	if cand.Role != "" {
		role = " for the role of " + cand.Role
	}
	return fmt.Sprintf("Hello %s,\n\n%s has named you as a referee%s. Please share your view of working with them here:\n\n%s\n\n"+
		"The link is personal, works once, and expires on %s.\n", name, cand.Name, role, link, expires.Format("2 January 2006"))
}

func pickReferees(r store.ReferenceRequest, ids []string) ([]int, error) {
	if len(ids) == 0 {
		var idx []int
		for i, ref := range r.Referees {
			if ref.State != store.InviteResponded && ref.State != store.InviteDeclined {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return nil, Conflict("every referee has already answered or declined")
		}
		return idx, nil
	}
	var idx []int
	for n, id := range ids {
		found := false
		for i, ref := range r.Referees {
			if ref.ID == id {
				if ref.State == store.InviteResponded || ref.State == store.InviteDeclined {
					return nil, Conflict(fmt.Sprintf("referee %s has already %s", id, ref.State))
				}
				idx, found = append(idx, i), true
			}
		}
		if !found {
			return nil, Invalid(fmt.Sprintf("refereeIds[%d]", n), "no referee "+id+" on this request")
		}
	}
	return idx, nil
}

func allIndexes(r store.ReferenceRequest) []int {
	idx := make([]int, len(r.Referees))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// refresh marks invitations past their expiry as expired; it is derived at
// read time so no sweeper is needed.
func refresh(r *store.ReferenceRequest, now time.Time) {
	for i := range r.Referees {
		ref := &r.Referees[i]
		if (ref.State == store.InviteQueued || ref.State == store.InviteSent || ref.State == store.InviteOpened) && ref.InviteExpiresAt != nil && !now.Before(*ref.InviteExpiresAt) {
			ref.State = store.InviteExpired
		}
	}
}

// deriveStatus follows the referees: completed when all answered or
// declined, in progress once any opened or answered, sent once any invited.
func deriveStatus(r store.ReferenceRequest) store.RequestStatus {
	if r.Status == store.RequestCancelled {
		return r.Status
	}
	var done, active, invited int
	for _, ref := range r.Referees {
		switch ref.State {
		case store.InviteResponded, store.InviteDeclined:
			done++
			active++
			invited++
		case store.InviteOpened:
			active++
			invited++
		case store.InviteQueued, store.InviteSent, store.InviteExpired:
			invited++
		}
	}
	switch {
	case len(r.Referees) > 0 && done == len(r.Referees):
		return store.RequestCompleted
	case active > 0:
		return store.RequestInProgress
	case invited > 0:
		return store.RequestSent
	default:
		return store.RequestDraft
	}
}
