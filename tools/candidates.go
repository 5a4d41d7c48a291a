package tools

import (
	"context"
	"strings"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// CandidateFields are the editable parts of a candidate.
type CandidateFields struct {
	Name        string `json:"name" minLength:"1" maxLength:"200" doc:"Full name"`
	Email       string `json:"email,omitempty" maxLength:"254" doc:"E-mail address"`
	Phone       string `json:"phone,omitempty" maxLength:"50"`
	Role        string `json:"role,omitempty" maxLength:"200" doc:"The role applied for"`
	ExternalRef string `json:"externalRef,omitempty" maxLength:"200" doc:"Your system's id for this candidate"`
}

func (f CandidateFields) validate(prefix string) error {
	if strings.TrimSpace(f.Name) == "" {
		return Invalid(prefix+"name", "the name must not be blank")
	}
	return checkEmail(prefix+"email", f.Email)
}

// CandidatesUpdateInput changes only the fields given.
type CandidatesUpdateInput struct {
	ID          string  `json:"id" path:"id" minLength:"1" maxLength:"100"`
	Name        *string `json:"name,omitempty" minLength:"1" maxLength:"200"`
	Email       *string `json:"email,omitempty" maxLength:"254" doc:"Empty string clears it"`
	Phone       *string `json:"phone,omitempty" maxLength:"50"`
	Role        *string `json:"role,omitempty" maxLength:"200"`
	ExternalRef *string `json:"externalRef,omitempty" maxLength:"200"`
}

// CandidatesListInput filters the list.
type CandidatesListInput struct {
	Paging
	Email       string `json:"email,omitempty" query:"email" maxLength:"254" doc:"Exact e-mail, case-insensitive"`
	ExternalRef string `json:"externalRef,omitempty" query:"externalRef" maxLength:"200"`
	Query       string `json:"q,omitempty" query:"q" maxLength:"200" doc:"Part of the name or e-mail"`
}

func (c *catalogue) candidates() {
	Add(c.r, Spec{
		Name: "candidates_list", Title: "List candidates",
		Description: "Lists candidates, newest first, optionally filtered by e-mail, external reference or a search term. Paginated with limit and cursor.",
		Policy:      auth.Reads(auth.CandidatesRead), ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/candidates"}, Target: "candidate",
	}, func(ctx context.Context, p auth.Principal, in CandidatesListInput) (List[store.Candidate], error) {
		rows, next, err := Q(ctx).ListCandidates(ctx, store.TenancyOf(p),
			store.CandidateFilter{Email: in.Email, ExternalRef: in.ExternalRef, Query: in.Query}, in.page())
		return listOf(rows, next), err
	})
	Add(c.r, Spec{
		Name: "candidates_get", Title: "Get a candidate",
		Description: "Returns one candidate by id.",
		Policy:      auth.Reads(auth.CandidatesRead), ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/candidates/{id}"}, Target: "candidate",
	}, func(ctx context.Context, p auth.Principal, in IDInput) (store.Candidate, error) {
		cand, err := Q(ctx).GetCandidate(ctx, store.TenancyOf(p), in.ID)
		return cand, notFound(err, "candidate", in.ID)
	})
	Add(c.r, Spec{
		Name: "candidates_create", Title: "Create a candidate",
		Description: "Creates a candidate. To start a reference check at the same time, use references_start with an inline candidate instead.",
		Policy:      auth.AnyOf(auth.CandidatesWrite), Mutates: true,
		HTTP: Binding{Method: "POST", Path: "/candidates", Status: 201}, Target: "candidate",
	}, func(ctx context.Context, p auth.Principal, in CandidateFields) (store.Candidate, error) {
		return c.createCandidate(ctx, p, in, "")
	})
	Add(c.r, Spec{
		Name: "candidates_update", Title: "Update a candidate",
		Description: "Changes the given fields of a candidate; fields left out keep their value.",
		// Destructive: the old values are overwritten, not kept.
		Policy: auth.AnyOf(auth.CandidatesWrite), Mutates: true, Idempotent: true, Destructive: true,
		HTTP: Binding{Method: "PATCH", Path: "/candidates/{id}"}, Target: "candidate",
	}, func(ctx context.Context, p auth.Principal, in CandidatesUpdateInput) (store.Candidate, error) {
		q := Q(ctx)
		ten := store.TenancyOf(p)
		cand, err := q.GetCandidate(ctx, ten, in.ID)
		if err != nil {
			return cand, notFound(err, "candidate", in.ID)
		}
		f := CandidateFields{Name: cand.Name, Email: cand.Email, Phone: cand.Phone, Role: cand.Role, ExternalRef: cand.ExternalRef}
		changed := false
		for _, u := range []struct {
			from *string
			to   *string
		}{{in.Name, &f.Name}, {in.Email, &f.Email}, {in.Phone, &f.Phone}, {in.Role, &f.Role}, {in.ExternalRef, &f.ExternalRef}} {
			if u.from != nil {
				*u.to = strings.TrimSpace(*u.from)
				changed = true
			}
		}
		if !changed {
			return cand, Invalid("", "give at least one field to change")
		}
		if err := f.validate(""); err != nil {
			return cand, err
		}
		cand.Name, cand.Email, cand.Phone, cand.Role, cand.ExternalRef = f.Name, f.Email, f.Phone, f.Role, f.ExternalRef
		cand.UpdatedAt = c.now()
		return q.UpdateCandidate(ctx, ten, cand)
	})
}

func (c *catalogue) createCandidate(ctx context.Context, p auth.Principal, in CandidateFields, field string) (store.Candidate, error) {
	in.Name, in.Email = strings.TrimSpace(in.Name), strings.TrimSpace(in.Email)
	if err := in.validate(field); err != nil {
		return store.Candidate{}, err
	}
	now := c.now()
	cand := store.Candidate{ID: store.NewID("cand"), Name: in.Name, Email: in.Email, Phone: strings.TrimSpace(in.Phone),
		Role: strings.TrimSpace(in.Role), ExternalRef: strings.TrimSpace(in.ExternalRef), CreatedAt: now, UpdatedAt: now}
	if err := Q(ctx).InsertCandidate(ctx, store.TenancyOf(p), cand); err != nil {
		return cand, err
	}
	return cand, nil
}
