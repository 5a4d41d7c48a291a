package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// The recruiter workspace: the audit trail, usage summaries and the key
// lifecycle beyond create/revoke. Same session rules as key management.

type auditInput struct {
	SessionAuth
	Tenant      string    `path:"tenant" maxLength:"100"`
	Environment string    `query:"environment" enum:"live,test" doc:"Only events of this environment"`
	ActorKind   string    `query:"actorKind" enum:"api_key,recruiter,operator,referee,system"`
	ActorID     string    `query:"actorId" maxLength:"100"`
	KeyID       string    `query:"keyId" maxLength:"100" doc:"Events by this key, or done to it"`
	Surface     string    `query:"surface" maxLength:"50" doc:"rest, mcp, agent, management, console, cli…"`
	Action      string    `query:"action" maxLength:"100" doc:"e.g. api_key.suspend or a tool name"`
	TargetType  string    `query:"targetType" maxLength:"50"`
	TargetID    string    `query:"targetId" maxLength:"100"`
	Outcome     string    `query:"outcome" maxLength:"100" doc:"ok, or the error code"`
	Since       time.Time `query:"since" doc:"Events at or after this instant (RFC 3339)"`
	Until       time.Time `query:"until" doc:"Events before this instant (RFC 3339)"`
	Limit       int       `query:"limit" minimum:"1" maximum:"200" default:"50"`
	Cursor      string    `query:"cursor"`
}

// AuditActor is who acted; for keys, their prefix and name as they are now.
type AuditActor struct {
	Kind      store.ActorKind `json:"kind" enum:"api_key,recruiter,operator,referee,system"`
	ID        string          `json:"id"`
	KeyPrefix string          `json:"keyPrefix,omitempty"`
	KeyName   string          `json:"keyName,omitempty"`
}

// AuditTarget is what was acted on.
type AuditTarget struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// AuditEventView is one event of the trail.
type AuditEventView struct {
	ID          string         `json:"id"`
	Environment string         `json:"environment" enum:"live,test"`
	Actor       AuditActor     `json:"actor"`
	Surface     store.Surface  `json:"surface"`
	Action      string         `json:"action"`
	Target      *AuditTarget   `json:"target,omitempty"`
	Outcome     store.Outcome  `json:"outcome" doc:"ok, or the error code"`
	TraceID     string         `json:"traceId,omitempty"`
	At          time.Time      `json:"at"`
	Input       map[string]any `json:"input,omitempty" doc:"A summary of the input, never secrets"`
}

type auditOutput struct {
	Body struct {
		Data       []AuditEventView `json:"data"`
		NextCursor string           `json:"nextCursor,omitempty"`
	}
}

type suspendInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	ID     string `path:"id" maxLength:"100"`
	Body   *struct {
		Note string `json:"note,omitempty" maxLength:"500" doc:"Why; shown on the key and in the audit trail"`
	}
}

type rollInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	ID     string `path:"id" maxLength:"100"`
	Body   struct {
		GraceHours int `json:"graceHours" minimum:"0" maximum:"168" doc:"How long the old secret keeps working; 0 ends it now"`
	}
}

type summaryInput struct {
	SessionAuth
	Tenant string    `path:"tenant" maxLength:"100"`
	ID     string    `path:"id" maxLength:"100"`
	From   time.Time `query:"from" doc:"Start (inclusive); default 30 days before to"`
	To     time.Time `query:"to" doc:"End (exclusive); default now"`
}

type summaryOutput struct{ Body UsageSummary }

func (s *Server) mountWorkspace(m huma.API, ks *KeyService) {
	base := "/v1/tenants/{tenant}"
	huma.Register(m, huma.Operation{OperationID: "listAuditEvents", Method: http.MethodGet, Path: base + "/audit-events",
		Summary: "List the audit trail", Tags: []string{"Audit"},
		Description: "Newest first. Members see their own actions and those of and on their keys; admins the whole tenant."},
		func(ctx context.Context, in *auditInput) (*auditOutput, error) {
			c, err := s.session(ctx, in.SessionAuth, in.Tenant)
			if err != nil {
				return nil, err
			}
			return s.auditEvents(ctx, c, in)
		})

	huma.Register(m, huma.Operation{OperationID: "getApiKeyUsageSummary", Method: http.MethodGet, Path: base + "/api-keys/{id}/usage/summary",
		Summary: "Summarise a key's usage per day", Tags: []string{"API keys"}},
		func(ctx context.Context, in *summaryInput) (*summaryOutput, error) {
			c, k, err := s.ownedKey(ctx, keyPath{in.SessionAuth, in.Tenant, in.ID})
			if err != nil {
				return nil, err
			}
			sum, err := Summarise(ctx, s.opts.Store, c.tenant.ID, k.ID, in.From, in.To, s.now())
			if err != nil {
				return nil, problemFrom(err)
			}
			return &summaryOutput{Body: sum}, nil
		})

	huma.Register(m, huma.Operation{OperationID: "suspendApiKey", Method: http.MethodPost, Path: base + "/api-keys/{id}/suspend",
		Summary: "Suspend a key", Tags: []string{"API keys"},
		Description: "The key answers 401 AUTH_SUSPENDED_KEY on every surface from the next request until it is resumed."},
		func(ctx context.Context, in *suspendInput) (*keyOutput, error) {
			c, k, err := s.ownedKey(ctx, keyPath{in.SessionAuth, in.Tenant, in.ID})
			if err != nil {
				return nil, err
			}
			note := ""
			if in.Body != nil {
				note = in.Body.Note
			}
			v, err := ks.Suspend(ctx, c.tenant.ID, k.ID, note, c.actor())
			if err != nil {
				return nil, problemFrom(err)
			}
			return &keyOutput{Body: v}, nil
		})

	huma.Register(m, huma.Operation{OperationID: "resumeApiKey", Method: http.MethodPost, Path: base + "/api-keys/{id}/resume",
		Summary: "Resume a suspended key", Tags: []string{"API keys"}},
		func(ctx context.Context, in *keyPath) (*keyOutput, error) {
			c, k, err := s.ownedKey(ctx, *in)
			if err != nil {
				return nil, err
			}
			v, err := ks.Resume(ctx, c.tenant.ID, k.ID, c.actor())
			if err != nil {
				return nil, problemFrom(err)
			}
			return &keyOutput{Body: v}, nil
		})

	huma.Register(m, huma.Operation{OperationID: "rollApiKey", Method: http.MethodPost, Path: base + "/api-keys/{id}/roll",
		DefaultStatus: 201, Summary: "Roll a key: a new secret, the old one ending after a grace period", Tags: []string{"API keys"},
		Description: "The new key takes over the name, environment and scopes and is shown once. The old key is renamed " +
			"\"<name> (rolled)\" and answers AUTH_EXPIRED_KEY once the grace ends."},
		func(ctx context.Context, in *rollInput) (*createdOutput, error) {
			c, k, err := s.ownedKey(ctx, keyPath{in.SessionAuth, in.Tenant, in.ID})
			if err != nil {
				return nil, err
			}
			created, err := ks.Roll(ctx, c.tenant.ID, k.ID, time.Duration(in.Body.GraceHours)*time.Hour, c.actor())
			if err != nil {
				return nil, problemFrom(err)
			}
			return &createdOutput{Body: created}, nil
		})
}

func (c caller) actor() Actor { return Actor{Kind: store.ActorRecruiter, ID: c.recruiter.ID} }

func (s *Server) auditEvents(ctx context.Context, c caller, in *auditInput) (*auditOutput, error) {
	f := store.AuditQuery{Environment: in.Environment, ActorKind: in.ActorKind, ActorID: in.ActorID, KeyID: in.KeyID,
		Surface: in.Surface, Action: in.Action, TargetType: in.TargetType, TargetID: in.TargetID, Outcome: in.Outcome}
	if !in.Since.IsZero() {
		f.Since = &in.Since
	}
	if !in.Until.IsZero() {
		f.Until = &in.Until
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return nil, problemFrom(tools.Invalid("until", "until must be after since"))
	}
	if !c.admin {
		f.OwnerRecruiterID = c.recruiter.ID
	}
	events, next, err := s.opts.Store.ListAuditEvents(ctx, c.tenant.ID, f, store.Page{Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, problemFrom(err)
	}
	out := &auditOutput{}
	out.Body.Data = AuditViews(ctx, s.opts.Store, c.tenant.ID, events)
	out.Body.NextCursor = next
	return out, nil
}

// AuditViews renders events, naming the keys that acted. A key that cannot
// be read is shown by id alone rather than failing the page.
func AuditViews(ctx context.Context, st store.Queries, tenantID string, events []store.AuditEvent) []AuditEventView {
	keys := map[string]store.APIKey{}
	out := make([]AuditEventView, 0, len(events))
	for _, e := range events {
		v := AuditEventView{ID: e.ID, Environment: string(e.Environment), Actor: AuditActor{Kind: e.ActorKind, ID: e.ActorID},
			Surface: e.Surface, Action: e.Action, Outcome: e.Outcome, TraceID: e.TraceID, At: e.At, Input: e.Data}
		if e.TargetType != "" || e.TargetID != "" {
			v.Target = &AuditTarget{Type: e.TargetType, ID: e.TargetID}
		}
		if e.ActorKind == store.ActorAPIKey {
			k, ok := keys[e.ActorID]
			if !ok {
				k, _ = st.GetAPIKey(ctx, tenantID, e.ActorID)
				keys[e.ActorID] = k
			}
			v.Actor.KeyPrefix, v.Actor.KeyName = k.Prefix, k.Name
		}
		out = append(out, v)
	}
	return out
}

// Caller is a verified recruiter and their tenant, for the console.
type Caller struct {
	Tenant    store.Tenant
	Recruiter store.Recruiter
	Admin     bool
}

// Actor is how the caller is recorded on audit events from surface.
func (c Caller) Actor(surface store.Surface) Actor {
	return Actor{Kind: store.ActorRecruiter, ID: c.Recruiter.ID, Surface: surface}
}

// SessionCaller verifies a session token (as the workspace routes do) and
// returns the recruiter it belongs to, in the tenant of its organization.
// Failures are *Problem.
func (s *Server) SessionCaller(ctx context.Context, token string) (Caller, error) {
	if s.opts.Clerk == nil {
		return Caller{}, problem.New(problem.Unavailable, "sign-in is not configured on this server").
			WithHint("set CLERK_JWKS_URL and CLERK_ISSUER, or run serve --dev")
	}
	c, err := s.resolve(ctx, token, "")
	if err != nil {
		return Caller{}, err
	}
	return Caller{Tenant: c.tenant, Recruiter: c.recruiter, Admin: c.admin}, nil
}

// KeyService is the one the workspace routes use, for the console to share.
func (s *Server) KeyService() *KeyService { return s.keys }

// SessionCookieName is Clerk's session cookie, read by the workspace routes
// and the console (the dev sign-in sets the same one).
const SessionCookieName = "__session"
