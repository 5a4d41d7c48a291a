package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// `veref login` is a device authorization grant in the shape of RFC 8628:
// the CLI starts a session and polls with a secret device code; a recruiter
// signed in to the console approves the short user code the CLI shows; the
// CLI's next poll mints the key, once. The routes the CLI calls carry no
// credential; the workspace routes need the recruiter's session.

const (
	cliSessionTTL      = 10 * time.Minute
	cliPollInterval    = 2                      // seconds, RFC 8628's interval
	cliSlowDownStep    = 5                      // seconds added to the interval on slow_down (RFC 8628 §3.5)
	userCodeAlphabet   = "BCDFGHJKLMNPQRSTVWXZ" // no vowels (no words), no 0/O or 1/I
	userCodeLen        = 8
	deviceCodeLen      = 43
	cliPollLeeway      = 500 * time.Millisecond // network jitter between polls made at the interval
	cliKeyNamePrefix   = "CLI on "
	maxHostnameRunes   = 100
	maxClientNameRunes = 100
)

// CLIAuthorization is what `veref login` gets back when it starts.
type CLIAuthorization struct {
	DeviceCode              string `json:"deviceCode" doc:"Secret: the CLI polls with it and shows it to no one"`
	UserCode                string `json:"userCode" doc:"Shown to the user, e.g. WDJB-MJHT"`
	VerificationURI         string `json:"verificationUri"`
	VerificationURIComplete string `json:"verificationUriComplete"`
	ExpiresIn               int    `json:"expiresIn" doc:"Seconds until the session expires"`
	Interval                int    `json:"interval" doc:"Seconds to wait between polls"`
}

// CLILogin is the redeemed session: the new key, shown once.
type CLILogin struct {
	CreatedKey
	TenantID string `json:"tenantId"`
}

// CLISessionView is a session as the approving recruiter sees it.
type CLISessionView struct {
	UserCode    string     `json:"userCode"`
	ClientName  string     `json:"clientName"`
	Hostname    string     `json:"hostname"`
	Status      string     `json:"status" enum:"pending,approved,denied,redeemed,expired"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	KeyName     string     `json:"keyName" doc:"The name the key will get (made unique when it is minted)"`
	Environment string     `json:"environment,omitempty"`
	Scopes      []string   `json:"scopes,omitempty"`
	DecidedAt   *time.Time `json:"decidedAt,omitempty"`
}

type cliStartInput struct {
	Body *struct {
		ClientName string `json:"clientName,omitempty" maxLength:"100" doc:"e.g. veref 1.4.0"`
		Hostname   string `json:"hostname,omitempty" maxLength:"100" doc:"The machine asking, shown to the approver"`
	}
	TraceParent string `header:"traceparent"`
}

type cliTokenInput struct {
	Body struct {
		DeviceCode string `json:"deviceCode" minLength:"1" maxLength:"200"`
	}
}

type cliSessionPath struct {
	SessionAuth
	Tenant   string `path:"tenant" maxLength:"100"`
	UserCode string `path:"userCode" maxLength:"20"`
}

// cliApproveInput repeats cliSessionPath's fields: Huma reads parameters
// only from exported fields, and an embedded unexported struct is not one.
type cliApproveInput struct {
	SessionAuth
	Tenant   string `path:"tenant" maxLength:"100"`
	UserCode string `path:"userCode" maxLength:"20"`
	Body     struct {
		Environment string   `json:"environment" enum:"live,test"`
		Scopes      []string `json:"scopes,omitempty" doc:"Empty or absent means all scopes"`
	}
}

type cliStartOutput struct{ Body CLIAuthorization }
type cliTokenOutput struct{ Body CLILogin }
type cliSessionOutput struct{ Body CLISessionView }

func (s *Server) mountCLISessions() {
	cfg := huma.DefaultConfig("Veref CLI login", s.opts.Version)
	cfg.CreateHooks = nil
	cfg.OpenAPIPath, cfg.DocsPath, cfg.SchemasPath = "", "", ""
	m := humago.New(s.mux, cfg)
	ks := &KeyService{Store: s.opts.Store, Hasher: s.opts.Hasher, Now: s.now, MaxActive: s.opts.MaxActiveKeys}

	huma.Register(m, huma.Operation{OperationID: "startCliSession", Method: http.MethodPost, Path: "/v1/cli/sessions", DefaultStatus: 201},
		func(ctx context.Context, in *cliStartInput) (*cliStartOutput, error) {
			return s.startCLISession(ctx, in)
		})
	huma.Register(m, huma.Operation{OperationID: "redeemCliSession", Method: http.MethodPost, Path: "/v1/cli/sessions/token"},
		func(ctx context.Context, in *cliTokenInput) (*cliTokenOutput, error) {
			login, err := s.redeemCLISession(ctx, ks, in.Body.DeviceCode)
			if err != nil {
				return nil, problemFrom(err)
			}
			return &cliTokenOutput{Body: login}, nil
		})

	base := "/v1/tenants/{tenant}/cli-sessions/{userCode}"
	huma.Register(m, huma.Operation{OperationID: "getCliSession", Method: http.MethodGet, Path: base},
		func(ctx context.Context, in *cliSessionPath) (*cliSessionOutput, error) {
			_, sess, err := s.cliSessionFor(ctx, *in)
			if err != nil {
				return nil, err
			}
			return &cliSessionOutput{Body: s.cliSessionView(sess)}, nil
		})
	huma.Register(m, huma.Operation{OperationID: "approveCliSession", Method: http.MethodPost, Path: base + "/approve"},
		func(ctx context.Context, in *cliApproveInput) (*cliSessionOutput, error) {
			c, sess, err := s.cliSessionFor(ctx, cliSessionPath{in.SessionAuth, in.Tenant, in.UserCode})
			if err != nil {
				return nil, err
			}
			scopes, err := auth.ParseScopes(in.Body.Scopes)
			if err != nil {
				return nil, problemFrom(tools.Invalid("scopes", err.Error()))
			}
			sess.Environment, sess.Scopes = auth.Environment(in.Body.Environment), scopes
			sess, err = s.decideCLISession(ctx, c, sess, store.CLISessionApproved, "management")
			if err != nil {
				return nil, problemFrom(err)
			}
			return &cliSessionOutput{Body: s.cliSessionView(sess)}, nil
		})
	huma.Register(m, huma.Operation{OperationID: "denyCliSession", Method: http.MethodPost, Path: base + "/deny"},
		func(ctx context.Context, in *cliSessionPath) (*cliSessionOutput, error) {
			c, sess, err := s.cliSessionFor(ctx, *in)
			if err != nil {
				return nil, err
			}
			sess, err = s.decideCLISession(ctx, c, sess, store.CLISessionDenied, "management")
			if err != nil {
				return nil, problemFrom(err)
			}
			return &cliSessionOutput{Body: s.cliSessionView(sess)}, nil
		})
}

func (s *Server) startCLISession(ctx context.Context, in *cliStartInput) (*cliStartOutput, error) {
	client, host := "veref", "unknown host"
	if in.Body != nil {
		if v := strings.TrimSpace(in.Body.ClientName); v != "" {
			client = v
		}
		if v := strings.TrimSpace(in.Body.Hostname); v != "" {
			host = v
		}
	}
	// The approver decides from these strings: nothing in them may hide or
	// reorder what the page shows.
	for field, v := range map[string]string{"clientName": client, "hostname": host} {
		if !displaySafe(v) {
			return nil, problemFrom(tools.Invalid(field, field+" must be printable text without control or bidirectional formatting characters"))
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	device := auth.RandomString(deviceCodeLen)
	sess := store.CLISession{ID: store.NewID("cls"), DeviceHash: s.deviceHash(device), ClientName: client, Hostname: host,
		Status: store.CLISessionPending, CreatedAt: now, ExpiresAt: now.Add(cliSessionTTL), Interval: cliPollInterval, Version: 1}
	var err error
	for range 5 { // a user code collision is rare; draw again
		sess.UserCode = newUserCode()
		err = s.opts.Store.InTx(ctx, func(q store.Queries) error {
			if err := q.InsertCLISession(ctx, sess); err != nil {
				return err
			}
			// No tenant is known yet: the issue is recorded outside any
			// tenant, and the approval repeats when it was issued.
			return q.InsertAudit(ctx, store.NewAuditEvent(store.Tenancy{}, store.Actor{Kind: store.ActorSystem, ID: "veref-login"},
				store.SurfaceCLI, telemetry.TraceID(ctx), "cli_session.issue", now).On("cli_session", sess.ID).
				WithData(map[string]any{"clientName": client, "hostname": host, "expiresAt": sess.ExpiresAt}))
		})
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return nil, problemFrom(err)
	}
	app := s.appURL()
	code := formatUserCode(sess.UserCode)
	return &cliStartOutput{Body: CLIAuthorization{
		DeviceCode: device, UserCode: code,
		VerificationURI: app + "/cli", VerificationURIComplete: app + "/cli?code=" + code,
		ExpiresIn: int(cliSessionTTL / time.Second), Interval: cliPollInterval,
	}}, nil
}

// redeemCLISession answers one poll: an RFC 8628 error until the session is
// approved, then the new key, once.
func (s *Server) redeemCLISession(ctx context.Context, ks *KeyService, device string) (CLILogin, error) {
	hash := s.deviceHash(strings.TrimSpace(device))
	sess, err := s.opts.Store.CLISessionByDeviceHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return CLILogin{}, cliProblem(problem.ExpiredToken, "this device code is not known; start again with veref login")
	}
	if err != nil {
		return CLILogin{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	switch {
	case sess.Status == store.CLISessionRedeemed:
		return CLILogin{}, cliProblem(problem.ExpiredToken, "this login was already completed; a device code gives one key")
	case sess.Status == store.CLISessionDenied:
		return CLILogin{}, cliProblem(problem.AccessDenied, "the login request was denied in the console")
	case !now.Before(sess.ExpiresAt):
		return CLILogin{}, cliProblem(problem.ExpiredToken, "the login request expired before it was approved; start again with veref login")
	case sess.Status == store.CLISessionPending:
		return CLILogin{}, s.pollPending(ctx, sess, now)
	}
	var login CLILogin
	err = s.opts.Store.InTx(ctx, func(q store.Queries) error {
		name, err := uniqueKeyName(ctx, q, sess.TenantID, keyNameFor(sess.Hostname))
		if err != nil {
			return err
		}
		scopes := make([]string, len(sess.Scopes))
		for i, sc := range sess.Scopes {
			scopes[i] = string(sc)
		}
		created, err := ks.CreateIn(ctx, q, NewKey{TenantID: sess.TenantID, RecruiterID: sess.RecruiterID, Name: name,
			Environment: sess.Environment, Scopes: scopes}, Actor{Kind: store.ActorRecruiter, ID: sess.RecruiterID})
		if err != nil {
			return err
		}
		sess.Status, sess.KeyID, sess.LastPolledAt = store.CLISessionRedeemed, created.APIKey.ID, &now
		// Versioned: of two polls racing with the same code, one gets the key.
		if _, err := q.UpdateCLISession(ctx, sess); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return cliProblem(problem.ExpiredToken, "this login was already completed; a device code gives one key")
			}
			return err
		}
		login = CLILogin{CreatedKey: created, TenantID: sess.TenantID}
		return q.InsertAudit(ctx, store.NewAuditEvent(store.Tenancy{TenantID: sess.TenantID, Environment: sess.Environment},
			store.Actor{Kind: store.ActorAPIKey, ID: created.APIKey.ID}, store.SurfaceCLI, telemetry.TraceID(ctx), "cli_session.redeem", now).
			On("cli_session", sess.ID).
			WithData(map[string]any{"keyId": created.APIKey.ID, "keyName": name, "hostname": sess.Hostname}))
	})
	return login, err
}

// pollPending records the poll and says to keep waiting, or to slow down
// when the CLI polled before its interval was up (the interval then grows,
// as RFC 8628 asks).
func (s *Server) pollPending(ctx context.Context, sess store.CLISession, now time.Time) error {
	tooSoon := sess.LastPolledAt != nil && now.Sub(*sess.LastPolledAt) < time.Duration(sess.Interval)*time.Second-cliPollLeeway
	if tooSoon {
		sess.Interval += cliSlowDownStep
	}
	sess.LastPolledAt = &now
	// A conflict is another poll or the decision landing meanwhile; either
	// way the answer below stays right for this poll.
	if _, err := s.opts.Store.UpdateCLISession(ctx, sess); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	if tooSoon {
		return cliProblem(problem.SlowDown, fmt.Sprintf("polled too soon; wait %d seconds between polls", sess.Interval))
	}
	return cliProblem(problem.AuthorizationPending, "waiting for the request to be approved in the console")
}

// cliSessionFor verifies the recruiter and finds the session by its user
// code. A session decided by another tenant is not found, like one that
// does not exist.
func (s *Server) cliSessionFor(ctx context.Context, in cliSessionPath) (caller, store.CLISession, error) {
	c, err := s.session(ctx, in.SessionAuth, in.Tenant)
	if err != nil {
		return c, store.CLISession{}, err
	}
	sess, err := s.findCLISession(ctx, c.tenant.ID, in.UserCode)
	return c, sess, err
}

// findCLISession finds a session by the code a person typed. A session
// decided by another tenant is not found, like one that does not exist.
func (s *Server) findCLISession(ctx context.Context, tenantID, userCode string) (store.CLISession, error) {
	notFound := problemFrom(tools.NotFound("login request", userCode))
	code, ok := normalizeUserCode(userCode)
	if !ok {
		return store.CLISession{}, notFound
	}
	sess, err := s.opts.Store.CLISessionByUserCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.TenantID != "" && sess.TenantID != tenantID) {
		return store.CLISession{}, notFound
	}
	if err != nil {
		return store.CLISession{}, problemFrom(err)
	}
	return sess, nil
}

// CLISession is the login request with userCode as a recruiter of
// tenantID sees it (for the console's approval page).
func (s *Server) CLISession(ctx context.Context, tenantID, userCode string) (CLISessionView, error) {
	sess, err := s.findCLISession(ctx, tenantID, userCode)
	if err != nil {
		return CLISessionView{}, err
	}
	return s.cliSessionView(sess), nil
}

// DecideCLISession approves (with environment and scopes; none means all)
// or denies the login request with userCode, as the console does.
func (s *Server) DecideCLISession(ctx context.Context, c Caller, userCode string, approve bool, env string, scopes []string, surface string) (CLISessionView, error) {
	sess, err := s.findCLISession(ctx, c.Tenant.ID, userCode)
	if err != nil {
		return CLISessionView{}, err
	}
	status := store.CLISessionDenied
	if approve {
		parsed, err := auth.ParseScopes(scopes)
		if err != nil {
			return CLISessionView{}, problemFrom(tools.Invalid("scopes", err.Error()))
		}
		if !auth.Environment(env).Valid() {
			return CLISessionView{}, problemFrom(tools.Invalid("environment", "environment must be live or test"))
		}
		status, sess.Environment, sess.Scopes = store.CLISessionApproved, auth.Environment(env), parsed
	}
	sess, err = s.decideCLISession(ctx, caller{tenant: c.Tenant, recruiter: c.Recruiter, admin: c.Admin}, sess, status, store.Surface(surface))
	if err != nil {
		return CLISessionView{}, problemFrom(err)
	}
	return s.cliSessionView(sess), nil
}

// decideCLISession approves or denies a pending session, once, with its audit event.
func (s *Server) decideCLISession(ctx context.Context, c caller, sess store.CLISession, status string, surface store.Surface) (store.CLISession, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	switch {
	case sess.Status != store.CLISessionPending:
		return sess, &tools.Error{Code: problem.Conflict, Message: "this login request was already " + sess.Status}
	case !now.Before(sess.ExpiresAt):
		return sess, &tools.Error{Code: problem.Conflict, Message: "this login request expired", Hint: "run veref login again"}
	}
	sess.Status, sess.TenantID, sess.RecruiterID, sess.DecidedAt = status, c.tenant.ID, c.recruiter.ID, &now
	action, env := "cli_session.approve", sess.Environment
	data := map[string]any{"hostname": sess.Hostname, "clientName": sess.ClientName, "issuedAt": sess.CreatedAt}
	if status == store.CLISessionApproved {
		data["environment"], data["scopes"] = string(sess.Environment), sess.Scopes
	} else {
		// A denial has no environment; it is recorded with live, where a
		// reviewer looks for refused access.
		action, env, sess.Environment, sess.Scopes = "cli_session.deny", auth.Live, "", nil
	}
	err := s.opts.Store.InTx(ctx, func(q store.Queries) error {
		var err error
		if sess, err = q.UpdateCLISession(ctx, sess); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return &tools.Error{Code: problem.Conflict, Message: "this login request was decided meanwhile"}
			}
			return err
		}
		return q.InsertAudit(ctx, store.NewAuditEvent(store.Tenancy{TenantID: c.tenant.ID, Environment: env},
			store.Actor{Kind: store.ActorRecruiter, ID: c.recruiter.ID}, surface, telemetry.TraceID(ctx), action, now).
			On("cli_session", sess.ID).WithData(data))
	})
	return sess, err
}

func (s *Server) cliSessionView(sess store.CLISession) CLISessionView {
	v := CLISessionView{UserCode: formatUserCode(sess.UserCode), ClientName: sess.ClientName, Hostname: sess.Hostname,
		Status: sess.Status, CreatedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt, KeyName: keyNameFor(sess.Hostname),
		Environment: string(sess.Environment), DecidedAt: sess.DecidedAt}
	for _, sc := range sess.Scopes {
		v.Scopes = append(v.Scopes, string(sc))
	}
	if (sess.Status == store.CLISessionPending || sess.Status == store.CLISessionApproved) && !s.now().Before(sess.ExpiresAt) {
		v.Status = "expired"
	}
	return v
}

// appURL is where the console lives: VEREF_APP_URL, or the public URL + /app.
func (s *Server) appURL() string {
	return strings.TrimRight(s.opts.AppURL, "/")
}

func (s *Server) deviceHash(device string) []byte {
	return s.opts.Hasher.Hash("cli-device\x00" + device)
}

func cliProblem(code problem.Code, detail string) *Problem {
	return problem.New(code, detail)
}

func newUserCode() string {
	b := make([]byte, userCodeLen)
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, n)
		if err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		b[i] = userCodeAlphabet[v.Int64()]
	}
	return string(b)
}

func formatUserCode(c string) string {
	if len(c) != userCodeLen {
		return c
	}
	return c[:4] + "-" + c[4:]
}

// normalizeUserCode accepts what a person types: any case, with or without
// the dash or spaces.
func normalizeUserCode(s string) (string, bool) {
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(s))
	if len(s) != userCodeLen {
		return "", false
	}
	for _, r := range s {
		if !strings.ContainsRune(userCodeAlphabet, r) {
			return "", false
		}
	}
	return s, true
}

// displaySafe refuses control characters, bidirectional controls and other
// invisible formatting characters.
func displaySafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

func keyNameFor(hostname string) string {
	max := 50 - utf8.RuneCountInString(cliKeyNamePrefix) - 5 // room for " (99)"
	r := []rune(hostname)
	if len(r) > max {
		r = append(r[:max-1], '…')
	}
	name := cliKeyNamePrefix + string(r)
	if utf8.RuneCountInString(name) < 3 {
		name = cliKeyNamePrefix + "a host"
	}
	return name
}

// uniqueKeyName is base, or base (2), (3)… when the tenant has that name:
// names are unique per tenant, and an insert that fails on PostgreSQL
// would end the transaction.
func uniqueKeyName(ctx context.Context, q store.Queries, tenantID, base string) (string, error) {
	taken := map[string]bool{}
	page := store.Page{Limit: 200}
	for {
		keys, next, err := q.ListAPIKeys(ctx, tenantID, store.APIKeyFilter{}, page)
		if err != nil {
			return "", err
		}
		for _, k := range keys {
			taken[k.Name] = true
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s (%d)", base, i)
	}
	return name, nil
}
