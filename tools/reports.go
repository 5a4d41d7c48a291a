package tools

import (
	"context"
	"encoding/json"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// Report is a generated report as callers see it.
type Report struct {
	ID        string        `json:"id"`
	RequestID string        `json:"requestId"`
	Content   ReportContent `json:"content"`
	Shares    []store.Share `json:"shares"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

func reportView(r store.Report) (Report, error) {
	out := Report{ID: r.ID, RequestID: r.RequestID, Shares: r.Shares, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if out.Shares == nil {
		out.Shares = []store.Share{}
	}
	b, err := json.Marshal(r.Content)
	if err == nil {
		err = json.Unmarshal(b, &out.Content)
	}
	return out, err
}

// ReportsListInput filters the list.
type ReportsListInput struct {
	Paging
	RequestID string `json:"requestId,omitempty" query:"requestId" maxLength:"100"`
}

// ShareInput makes a share link.
type ShareInput struct {
	ID             string `json:"id" path:"id" minLength:"1" maxLength:"100"`
	ExpiresInHours int    `json:"expiresInHours,omitempty" minimum:"1" maximum:"720" doc:"Hours until the link stops working (default 168, one week)"`
}

// ShareLink is a new share link; URL carries the token and is shown once.
type ShareLink struct {
	store.Share
	ReportID string `json:"reportId"`
	URL      string `json:"url" doc:"The read-only public link. Shown once: store it if you need it again."`
}

// RevokeShareInput names a share link.
type RevokeShareInput struct {
	ID      string `json:"id" path:"id" minLength:"1" maxLength:"100"`
	ShareID string `json:"shareId" path:"shareId" minLength:"1" maxLength:"100"`
}

func (c *catalogue) reports() {
	read := auth.Reads(auth.ReportsRead, auth.ReferencesRead)
	write := auth.AnyOf(auth.ReportsWrite)
	Add(c.r, Spec{
		Name: "reports_list", Title: "List reports",
		Description: "Lists generated reports, newest first; filter by requestId.",
		Policy:      read, ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/reports"}, Target: "report",
	}, func(ctx context.Context, p auth.Principal, in ReportsListInput) (List[Report], error) {
		rows, next, err := Q(ctx).ListReports(ctx, store.TenancyOf(p), store.ReportFilter{RequestID: in.RequestID}, in.page())
		if err != nil {
			return List[Report]{}, err
		}
		out := make([]Report, 0, len(rows))
		for _, r := range rows {
			v, err := reportView(r)
			if err != nil {
				return List[Report]{}, err
			}
			out = append(out, v)
		}
		return listOf(out, next), nil
	})
	Add(c.r, Spec{
		Name: "reports_get", Title: "Get a report",
		Description: "Returns a report: per-question aggregates, per-referee summaries, agreement across referees, and flags such as low ratings or declined references.",
		Policy:      read, ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/reports/{id}"}, Target: "report",
	}, func(ctx context.Context, p auth.Principal, in IDInput) (Report, error) {
		r, err := Q(ctx).GetReport(ctx, store.TenancyOf(p), in.ID)
		if err != nil {
			return Report{}, notFound(err, "report", in.ID)
		}
		return reportView(r)
	})
	Add(c.r, Spec{
		Name: "reports_generate", Title: "Generate a report",
		Description: "Generates a report from the answers a reference request has received so far. Needs at least one answer; generate again later to include more.",
		Policy:      write, Mutates: true,
		HTTP: Binding{Method: "POST", Path: "/references/{id}/reports", Status: 201}, Target: "report",
	}, func(ctx context.Context, p auth.Principal, in IDInput) (Report, error) {
		q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
		r, err := q.GetReference(ctx, ten, in.ID)
		if err != nil {
			return Report{}, notFound(err, "reference request", in.ID)
		}
		refresh(&r, now)
		if !anyAnswered(r) {
			return Report{}, Conflict("no referee has answered yet; a report needs at least one response")
		}
		cand, err := q.GetCandidate(ctx, ten, r.CandidateID)
		if err != nil {
			return Report{}, err
		}
		var content map[string]any
		b, _ := json.Marshal(analyse(r, cand, now))
		if err := json.Unmarshal(b, &content); err != nil {
			return Report{}, err
		}
		rep := store.Report{ID: store.NewID("rpt"), RequestID: r.ID, Content: content, Shares: []store.Share{}, CreatedAt: now, UpdatedAt: now}
		if err := q.InsertReport(ctx, ten, rep); err != nil {
			return Report{}, err
		}
		return reportView(rep)
	})
	Add(c.r, Spec{
		Name: "reports_share", Title: "Share a report",
		Description: "Creates a read-only public link to a report that expires (default one week, at most 30 days). The link is returned once.",
		Policy:      write, Mutates: true, OpenWorld: true,
		HTTP: Binding{Method: "POST", Path: "/reports/{id}/shares", Status: 201}, Target: "report_share",
	}, func(ctx context.Context, p auth.Principal, in ShareInput) (ShareLink, error) {
		q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
		rep, err := q.GetReport(ctx, ten, in.ID)
		if err != nil {
			return ShareLink{}, notFound(err, "report", in.ID)
		}
		hours := in.ExpiresInHours
		if hours == 0 {
			hours = 168
		}
		sh := store.Share{ID: store.NewID("shr"), CreatedAt: now, ExpiresAt: now.Add(time.Duration(hours) * time.Hour)}
		token := auth.RandomString(32)
		if err := q.InsertPublicToken(ctx, store.PublicToken{Hash: c.tokenHash(store.TokenShare, token), Kind: store.TokenShare,
			TenantID: ten.TenantID, Environment: ten.Environment, TargetID: rep.ID, SubID: sh.ID, CreatedAt: now, ExpiresAt: sh.ExpiresAt}); err != nil {
			return ShareLink{}, err
		}
		rep.Shares = append(rep.Shares, sh)
		rep.UpdatedAt = now
		if _, err := q.UpdateReport(ctx, ten, rep); err != nil {
			return ShareLink{}, err
		}
		return ShareLink{Share: sh, ReportID: rep.ID, URL: c.deps.PublicURL + "/v1/shares/" + token}, nil
	})
	Add(c.r, Spec{
		Name: "reports_revoke_share", Title: "Revoke a share link",
		Description: "Stops a report's share link from working, immediately and for good. Revoking a revoked link changes nothing.",
		Policy:      write, Mutates: true, Destructive: true, Idempotent: true,
		HTTP: Binding{Method: "DELETE", Path: "/reports/{id}/shares/{shareId}"}, Target: "report_share",
	}, func(ctx context.Context, p auth.Principal, in RevokeShareInput) (store.Share, error) {
		q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
		rep, err := q.GetReport(ctx, ten, in.ID)
		if err != nil {
			return store.Share{}, notFound(err, "report", in.ID)
		}
		for i := range rep.Shares {
			sh := &rep.Shares[i]
			if sh.ID != in.ShareID {
				continue
			}
			if sh.RevokedAt != nil {
				return *sh, nil
			}
			sh.RevokedAt = &now
			if err := q.RevokePublicTokens(ctx, ten, store.TokenShare, rep.ID, sh.ID, now); err != nil {
				return store.Share{}, err
			}
			rep.UpdatedAt = now
			if _, err := q.UpdateReport(ctx, ten, rep); err != nil {
				return store.Share{}, err
			}
			return *sh, nil
		}
		return store.Share{}, NotFound("share link", in.ShareID)
	})
}

// anyRated reports whether a valuation has something to score: text
// answers alone cannot be valued.
func anyRated(r store.ReferenceRequest) bool {
	for _, ref := range r.Referees {
		for _, a := range ref.Answers {
			if a.Rating > 0 {
				return true
			}
		}
	}
	return false
}

func anyAnswered(r store.ReferenceRequest) bool {
	for _, ref := range r.Referees {
		if ref.State == store.InviteResponded {
			return true
		}
	}
	return false
}
