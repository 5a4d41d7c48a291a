package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// Key management is for recruiters signed in to Veref (a Clerk session),
// not for API keys, so it lives outside /v1/api and outside its spec.

// SessionAuth carries a recruiter's Clerk session: in the Authorization
// header for API clients and the CLI, or in the __session cookie Clerk's
// browser SDK sets, for the console. Inputs embed it (exported, because
// Huma only reads parameters from exported fields).
type SessionAuth struct {
	Authorization string `header:"Authorization" doc:"Bearer <Clerk session JWT>"`
	SessionCookie string `cookie:"__session" doc:"Clerk session JWT, as set by Clerk's browser SDK; Authorization wins when both are sent"`

	unsafe    bool   // the method changes something
	fetchSite string // Sec-Fetch-Site, set by browsers on every request
}

// Resolve records what the CSRF check in session needs from the request.
func (a *SessionAuth) Resolve(ctx huma.Context) []error {
	switch ctx.Method() {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		a.unsafe = true
	}
	a.fetchSite = ctx.Header("Sec-Fetch-Site")
	return nil
}

type keyPath struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	ID     string `path:"id" maxLength:"100"`
}

type createKeyInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	Body   struct {
		Name        string     `json:"name" minLength:"3" maxLength:"50" doc:"Unique within the tenant"`
		Environment string     `json:"environment" enum:"live,test"`
		Scopes      []string   `json:"scopes,omitempty" doc:"Empty or absent means all scopes"`
		ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
		LimitsBody
	}
}

// LimitsBody are the limits a key is created with or changed to.
type LimitsBody struct {
	RateLimit        *auth.RateLimit `json:"rateLimit,omitempty" doc:"Requests per second, minute or hour; absent: the server's default (VEREF_DEFAULT_RATE_LIMIT)"`
	AllowedIPs       []string        `json:"allowedIps,omitempty" maxItems:"100" doc:"CIDRs (or addresses) the key may be used from; empty means any address"`
	AgentDailyTokens *int64          `json:"agentDailyTokens,omitempty" minimum:"0" doc:"Ask Veref tokens per UTC day; absent: the server's default (VEREF_AGENT_DAILY_TOKENS)"`
}

func (b LimitsBody) change() LimitsChange {
	return LimitsChange{RateLimit: b.RateLimit, AllowedIPs: b.AllowedIPs, AgentDailyTokens: b.AgentDailyTokens}
}

type patchKeyInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	ID     string `path:"id" maxLength:"100"`
	Body   struct {
		LimitsBody
		Scopes []string `json:"scopes,omitempty" doc:"Immutable: a key's scopes never change; sending them is refused"`
	}
}

type revokeKeyInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	ID     string `path:"id" maxLength:"100"`
	Body   *struct {
		Note string `json:"note,omitempty" maxLength:"500"`
	}
}

type listInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
	Cursor string `query:"cursor"`
}

type usageInput struct {
	SessionAuth
	Tenant string `path:"tenant" maxLength:"100"`
	ID     string `path:"id" maxLength:"100"`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
	Cursor string `query:"cursor"`
}

type keyOutput struct{ Body KeyView }
type createdOutput struct{ Body CreatedKey }
type keyListOutput struct {
	Body struct {
		Data       []KeyView `json:"data"`
		NextCursor string    `json:"nextCursor,omitempty"`
	}
}
type usageOutput struct {
	Body struct {
		Data       []store.Usage `json:"data"`
		NextCursor string        `json:"nextCursor,omitempty"`
	}
}

// caller is a verified recruiter acting on their tenant.
type caller struct {
	tenant    store.Tenant
	recruiter store.Recruiter
	admin     bool
}

func (s *Server) mountKeyManagement() {
	cfg := huma.DefaultConfig("Veref recruiter workspace", s.opts.Version)
	cfg.CreateHooks = nil
	// Its own document, apart from the integration spec at /openapi.json:
	// these routes take a recruiter's session, never an API key.
	cfg.OpenAPIPath, cfg.DocsPath, cfg.SchemasPath = "/v1/tenants/openapi", "", ""
	cfg.Info.Description = "The recruiter workspace: API keys, their usage, suspension and roll, and the audit trail. " +
		"Authenticate with a signed-in session: `Authorization: Bearer <session token>` or Clerk's `__session` cookie. " +
		"Members see and act on their own keys and events; tenant admins on the whole tenant."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"session":       {Type: "http", Scheme: "bearer", BearerFormat: "JWT", Description: "A Clerk (or `serve --dev`) session token."},
		"sessionCookie": {Type: "apiKey", In: "cookie", Name: "__session", Description: "Clerk's session cookie, for same-origin pages."},
	}
	cfg.Security = []map[string][]string{{"session": {}}, {"sessionCookie": {}}}
	harden := hardenHuma(&cfg)
	m := humago.New(s.mux, cfg)
	harden(m)
	ks := &KeyService{Store: s.opts.Store, Hasher: s.opts.Hasher, Now: s.now, MaxActive: s.opts.MaxActiveKeys,
		DefaultRate: s.guard.Limits.DefaultRate}
	if q := s.guard.Limits.AgentTokens; q != nil {
		ks.DefaultAgentTokens = q.Budget(auth.Principal{})
	}
	s.keys = ks
	s.mountWorkspace(m, ks)
	base := "/v1/tenants/{tenant}/api-keys"

	huma.Register(m, huma.Operation{OperationID: "createApiKey", Method: http.MethodPost, Path: base, DefaultStatus: 201},
		func(ctx context.Context, in *createKeyInput) (*createdOutput, error) {
			c, err := s.session(ctx, in.SessionAuth, in.Tenant)
			if err != nil {
				return nil, err
			}
			if !c.admin && ks.ExceedsDefaults(in.Body.change()) {
				return nil, adminRequired("only a tenant admin can give a key more than the default rate limit or token budget")
			}
			created, err := ks.Create(ctx, NewKey{TenantID: c.tenant.ID, RecruiterID: c.recruiter.ID, Name: in.Body.Name,
				Environment: auth.Environment(in.Body.Environment), Scopes: in.Body.Scopes, ExpiresAt: in.Body.ExpiresAt,
				LimitsChange: in.Body.change()},
				Actor{Kind: store.ActorRecruiter, ID: c.recruiter.ID})
			if err != nil {
				return nil, problemFrom(err)
			}
			return &createdOutput{Body: created}, nil
		})

	huma.Register(m, huma.Operation{OperationID: "listApiKeys", Method: http.MethodGet, Path: base},
		func(ctx context.Context, in *listInput) (*keyListOutput, error) {
			c, err := s.session(ctx, in.SessionAuth, in.Tenant)
			if err != nil {
				return nil, err
			}
			f := store.APIKeyFilter{}
			if !c.admin {
				f.RecruiterID = c.recruiter.ID
			}
			keys, next, err := s.opts.Store.ListAPIKeys(ctx, c.tenant.ID, f, store.Page{Limit: in.Limit, Cursor: in.Cursor})
			if err != nil {
				return nil, problemFrom(err)
			}
			out := &keyListOutput{}
			out.Body.Data = make([]KeyView, 0, len(keys))
			for _, k := range keys {
				out.Body.Data = append(out.Body.Data, View(k, s.now()))
			}
			out.Body.NextCursor = next
			return out, nil
		})

	huma.Register(m, huma.Operation{OperationID: "getApiKey", Method: http.MethodGet, Path: base + "/{id}"},
		func(ctx context.Context, in *keyPath) (*keyOutput, error) {
			_, k, err := s.ownedKey(ctx, *in)
			if err != nil {
				return nil, err
			}
			return &keyOutput{Body: s.detail(ctx, k)}, nil
		})

	huma.Register(m, huma.Operation{OperationID: "updateApiKeyLimits", Method: http.MethodPatch, Path: base + "/{id}",
		Summary: "Change a key's rate limit, IP allowlist or agent token budget (tenant admins; scopes are immutable)"},
		func(ctx context.Context, in *patchKeyInput) (*keyOutput, error) {
			c, k, err := s.ownedKey(ctx, keyPath{in.SessionAuth, in.Tenant, in.ID})
			if err != nil {
				return nil, err
			}
			if !c.admin {
				return nil, adminRequired("only a tenant admin can change a key's limits")
			}
			if in.Body.Scopes != nil {
				return nil, problemFrom(tools.Invalid("scopes", "a key's scopes cannot change; create a new key with the scopes you need"))
			}
			if _, err := ks.UpdateLimits(ctx, c.tenant.ID, k.ID, in.Body.change(), Actor{Kind: store.ActorRecruiter, ID: c.recruiter.ID}); err != nil {
				return nil, problemFrom(err)
			}
			k, err = s.opts.Store.GetAPIKey(ctx, c.tenant.ID, k.ID)
			if err != nil {
				return nil, problemFrom(err)
			}
			return &keyOutput{Body: s.detail(ctx, k)}, nil
		})

	huma.Register(m, huma.Operation{OperationID: "listApiKeyUsage", Method: http.MethodGet, Path: base + "/{id}/usage"},
		func(ctx context.Context, in *usageInput) (*usageOutput, error) {
			c, k, err := s.ownedKey(ctx, keyPath{in.SessionAuth, in.Tenant, in.ID})
			if err != nil {
				return nil, err
			}
			rows, next, err := s.opts.Store.ListUsage(ctx, c.tenant.ID, k.ID, store.Page{Limit: in.Limit, Cursor: in.Cursor})
			if err != nil {
				return nil, problemFrom(err)
			}
			out := &usageOutput{}
			out.Body.Data = rows
			if out.Body.Data == nil {
				out.Body.Data = []store.Usage{}
			}
			out.Body.NextCursor = next
			return out, nil
		})

	huma.Register(m, huma.Operation{OperationID: "revokeApiKey", Method: http.MethodDelete, Path: base + "/{id}"},
		func(ctx context.Context, in *revokeKeyInput) (*keyOutput, error) {
			c, k, err := s.ownedKey(ctx, keyPath{in.SessionAuth, in.Tenant, in.ID})
			if err != nil {
				return nil, err
			}
			note := ""
			if in.Body != nil {
				note = in.Body.Note
			}
			v, err := ks.Revoke(ctx, c.tenant.ID, k.ID, note, Actor{Kind: store.ActorRecruiter, ID: c.recruiter.ID})
			if err != nil {
				return nil, problemFrom(err)
			}
			return &keyOutput{Body: v}, nil
		})
	finishWorkspaceDoc(m.OpenAPI())
}

// sessionToken picks the session token from the Authorization header, or
// else from the __session cookie. A cookie is sent by the browser on its
// own, so on a request that changes something it is only believed when the
// browser says the request came from one of our own pages (CSRF).
func sessionToken(a SessionAuth) (string, error) {
	missing := &Problem{Code: problem.AuthMissing,
		Detail: "key management needs a signed-in Veref session", Hint: "send Authorization: Bearer <session token>"}
	if h := strings.TrimSpace(a.Authorization); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", missing
		}
		return strings.TrimSpace(token), nil
	}
	token := strings.TrimSpace(a.SessionCookie)
	if token == "" {
		return "", missing
	}
	if a.unsafe && a.fetchSite != "same-origin" {
		return "", &Problem{Code: problem.AuthInvalidSession,
			Detail: "a session cookie is only accepted on changes made from this site's own pages",
			Hint:   "send the session as Authorization: Bearer <session token>"}
	}
	return token, nil
}

// ownedKey loads a key the caller may manage: their own, or any in the
// tenant for admins. Others' keys are 404, like keys that do not exist.
func (s *Server) ownedKey(ctx context.Context, in keyPath) (caller, store.APIKey, error) {
	c, err := s.session(ctx, in.SessionAuth, in.Tenant)
	if err != nil {
		return c, store.APIKey{}, err
	}
	k, err := s.opts.Store.GetAPIKey(ctx, c.tenant.ID, in.ID)
	if err == nil && !c.admin && k.RecruiterID != c.recruiter.ID {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return c, k, problemFrom(tools.NotFound("API key", in.ID))
	}
	if err != nil {
		return c, k, problemFrom(err)
	}
	return c, k, nil
}

// session verifies the Clerk JWT and maps it to a recruiter of the tenant in
// the path. The organization in the token must be the tenant's.
func (s *Server) session(ctx context.Context, a SessionAuth, tenantID string) (caller, error) {
	if s.opts.Clerk == nil {
		return caller{}, &Problem{Code: problem.Unavailable,
			Detail: "key management is not configured on this server", Hint: "set CLERK_JWKS_URL and CLERK_ISSUER"}
	}
	token, err := sessionToken(a)
	if err != nil {
		return caller{}, err
	}
	return s.resolve(ctx, token, tenantID)
}

// resolve verifies a session token and maps it to a recruiter of tenantID,
// or of the tenant of the session's organization when tenantID is "".
func (s *Server) resolve(ctx context.Context, token, tenantID string) (caller, error) {
	sess, err := s.opts.Clerk.Verify(ctx, token)
	if err != nil {
		var ce *ClerkError
		if errors.As(err, &ce) && ce.Unavailable {
			return caller{}, &Problem{Code: problem.Unavailable,
				Detail: "the session could not be verified right now; try again shortly"}
		}
		return caller{}, &Problem{Code: problem.AuthInvalidSession,
			Detail: "the session token was refused: " + err.Error(), Hint: "sign in again"}
	}
	notFound := &Problem{Code: problem.NotFound, Detail: "tenant " + tenantID + " was not found"}
	var t store.Tenant
	if tenantID == "" {
		t, err = s.opts.Store.TenantByClerkOrg(ctx, sess.OrgID)
		tenantID = sess.OrgID
	} else {
		t, err = s.opts.Store.GetTenant(ctx, tenantID)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && (t.ClerkOrgID == "" || t.ClerkOrgID != sess.OrgID)) {
		return caller{}, notFound
	}
	if err != nil {
		return caller{}, problemFrom(err)
	}
	r, err := s.opts.Store.RecruiterByClerkUser(ctx, t.ID, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, &Problem{Code: problem.RecruiterUnknown,
			Detail: "your user is not a recruiter of this tenant",
			Hint:   "ask an operator: veref admin recruiters create --tenant " + t.ID + " --clerk-user-id <your user id>"}
	}
	if err != nil {
		return caller{}, problemFrom(err)
	}
	return caller{tenant: t, recruiter: r, admin: sess.Admin || r.Admin}, nil
}

// detail is a key's view with today's agent spend.
func (s *Server) detail(ctx context.Context, k store.APIKey) KeyView {
	v := View(k, s.now())
	if q := s.guard.Limits.AgentTokens; q != nil {
		st, err := q.Status(ctx, auth.Principal{KeyID: k.ID, AgentDailyTokens: k.AgentDailyTokens})
		if err == nil {
			v.Agent = &st
		}
	}
	return v
}

func adminRequired(detail string) *Problem {
	return problem.New(problem.AdminRequired, detail).WithHint("ask an admin of this tenant")
}
