package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/devidp"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// surface is how console actions appear in the audit trail.
const surface = "console"

// Sign-in.

type signInData struct {
	Next       string
	Recruiters []store.Recruiter
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Sign in", Error: r.URL.Query().Get("msg")}
	d := signInData{Next: safeNext(r.URL.Query().Get("next"))}
	switch {
	case c.o.Dev != nil:
		rs, err := c.devRecruiters(r)
		if err != nil {
			p.Error = "The development tenant could not be read: " + err.Error()
		}
		d.Recruiters = rs
	case c.clerkFrontend != "":
		p.ClerkJS = "https://" + c.clerkFrontend + "/npm/@clerk/clerk-js@5/dist/clerk.browser.js"
		p.ClerkPK = c.o.ClerkPublishableKey
	default:
		p.Error = "Sign-in is not configured: set CLERK_PUBLISHABLE_KEY (and CLERK_JWKS_URL, CLERK_ISSUER), or run serve --dev."
	}
	p.Data = d
	c.render(w, r, http.StatusOK, "signin", p)
}

func (c *Console) devRecruiters(r *http.Request) ([]store.Recruiter, error) {
	var out []store.Recruiter
	for _, id := range []string{"recruiter_demo", "recruiter_member"} {
		rec, err := c.o.Store.GetRecruiter(r.Context(), c.o.DevTenant, id)
		if err == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (c *Console) devSignIn(w http.ResponseWriter, r *http.Request) {
	if c.o.Dev == nil {
		c.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Error: "Development sign-in is only offered by serve --dev."})
		return
	}
	s, err := devidp.SessionFor(r.Context(), c.o.Store, c.o.DevTenant, r.PostForm.Get("recruiter"))
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", page{Title: "Sign in", Error: "That recruiter cannot sign in: " + err.Error()})
		return
	}
	const ttl = 8 * time.Hour
	tok, err := c.o.Dev.Sign(s, ttl)
	if err != nil {
		c.render(w, r, http.StatusInternalServerError, "error", page{Title: "Sign in", Error: err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookieName, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int(ttl.Seconds())})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, Prefix+"/sign-in", http.StatusSeeOther)
}

// safeNext keeps redirects inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return Prefix + "/keys"
	}
	return next
}

// Keys.

type keyRow struct {
	api.KeyView
	Owner string
}

type keysData struct {
	Keys    []keyRow
	Next    string
	Scopes  []auth.ScopeInfo
	Created *api.CreatedKey
	Form    url.Values
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request) {
	c.renderKeys(w, r, http.StatusOK, "", nil, nil)
}

func (c *Console) renderKeys(w http.ResponseWriter, r *http.Request, status int, errMsg string, created *api.CreatedKey, form url.Values) {
	caller := callerOf(r)
	f := store.APIKeyFilter{}
	if !caller.Admin {
		f.RecruiterID = caller.Recruiter.ID
	}
	keys, next, err := c.o.Store.ListAPIKeys(r.Context(), caller.Tenant.ID, f, store.Page{Limit: 100, Cursor: r.URL.Query().Get("cursor")})
	if err != nil && errMsg == "" {
		errMsg = "The keys could not be listed: " + err.Error()
	}
	d := keysData{Next: next, Scopes: auth.Catalogue, Created: created, Form: form}
	for _, k := range keys {
		d.Keys = append(d.Keys, keyRow{KeyView: api.View(k, c.o.Now()), Owner: k.RecruiterID})
	}
	title := "API keys"
	if created != nil {
		title = "Key created — API keys"
	}
	c.render(w, r, status, "keys", page{Title: title, Nav: "keys", Caller: &caller, Error: errMsg, Data: d})
}

func (c *Console) createKey(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	req := api.NewKey{TenantID: caller.Tenant.ID, RecruiterID: caller.Recruiter.ID, Name: r.PostForm.Get("name"),
		Environment: auth.Environment(r.PostForm.Get("environment")), Scopes: r.PostForm["scope"]}
	if req.Scopes == nil {
		req.Scopes = []string{}
	}
	if v := r.PostForm.Get("expiresAt"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			c.renderKeys(w, r, http.StatusUnprocessableEntity, "The expiry must be a date.", nil, r.PostForm)
			return
		}
		t = t.Add(24*time.Hour - time.Second) // through the end of that day, UTC
		req.ExpiresAt = &t
	}
	if r.PostForm.Get("allScopes") == "" && len(req.Scopes) == 0 {
		c.renderKeys(w, r, http.StatusUnprocessableEntity, "Choose at least one scope, or “every scope”.", nil, r.PostForm)
		return
	}
	if r.PostForm.Get("allScopes") != "" {
		req.Scopes = nil
	}
	lc, errMsg := limitsFrom(r.PostForm)
	if errMsg != "" {
		c.renderKeys(w, r, http.StatusUnprocessableEntity, errMsg, nil, r.PostForm)
		return
	}
	if !caller.Admin && c.o.Keys.ExceedsDefaults(lc) {
		c.renderKeys(w, r, http.StatusForbidden, "Only a tenant admin can give a key more than the default rate limit.", nil, r.PostForm)
		return
	}
	req.LimitsChange = lc
	created, err := c.o.Keys.Create(r.Context(), req, caller.Actor(surface))
	if err != nil {
		c.renderKeys(w, r, statusOf(err), message(err), nil, r.PostForm)
		return
	}
	c.renderKeys(w, r, http.StatusCreated, "", &created, nil)
}

// limitsFrom reads the create form's optional limits; empty fields take
// the server's defaults, and the key service validates the rest.
func limitsFrom(f url.Values) (api.LimitsChange, string) {
	var lc api.LimitsChange
	if v := strings.TrimSpace(f.Get("rateRequests")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return lc, "The rate limit must be a whole number of requests."
		}
		lc.RateLimit = &auth.RateLimit{Requests: n, Per: f.Get("ratePer")}
	}
	for _, ip := range strings.Split(f.Get("allowedIps"), ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			lc.AllowedIPs = append(lc.AllowedIPs, ip)
		}
	}
	return lc, ""
}

// Key detail.

type keyData struct {
	Key    keyRow
	Chart  chart
	Usage  []store.Usage
	Events []api.AuditEventView
	Grace  []int
	Rolled *api.CreatedKey
}

func (c *Console) loadKey(w http.ResponseWriter, r *http.Request) (store.APIKey, bool) {
	caller := callerOf(r)
	k, err := c.o.Store.GetAPIKey(r.Context(), caller.Tenant.ID, r.PathValue("id"))
	if err == nil && !caller.Admin && k.RecruiterID != caller.Recruiter.ID {
		err = store.ErrNotFound
	}
	if err != nil {
		status, msg := http.StatusNotFound, "There is no key "+r.PathValue("id")+" that you can see."
		if !errors.Is(err, store.ErrNotFound) {
			status, msg = http.StatusServiceUnavailable, "The key could not be read: "+err.Error()
		}
		c.render(w, r, status, "error", page{Title: "Key not found", Nav: "keys", Caller: &caller, Error: msg})
		return k, false
	}
	return k, true
}

func (c *Console) keyPage(w http.ResponseWriter, r *http.Request) {
	if k, ok := c.loadKey(w, r); ok {
		c.renderKey(w, r, http.StatusOK, k, "", "", nil)
	}
}

func (c *Console) renderKey(w http.ResponseWriter, r *http.Request, status int, k store.APIKey, errMsg, notice string, rolled *api.CreatedKey) {
	caller := callerOf(r)
	ctx := r.Context()
	now := c.o.Now()
	d := keyData{Key: keyRow{KeyView: api.View(k, now), Owner: k.RecruiterID}, Grace: []int{0, 1, 24, 72, 168}, Rolled: rolled}
	if q := c.o.AgentTokens; q != nil {
		if st, err := q.Status(ctx, auth.Principal{KeyID: k.ID, AgentDailyTokens: k.AgentDailyTokens}); err == nil {
			d.Key.Agent = &st
		}
	}
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -13)
	if sum, err := api.Summarise(ctx, c.o.Store, caller.Tenant.ID, k.ID, from, now, now); err == nil {
		d.Chart = drawChart(sum)
	}
	d.Usage, _, _ = c.o.Store.ListUsage(ctx, caller.Tenant.ID, k.ID, store.Page{Limit: 20})
	events, _, _ := c.o.Store.ListAuditEvents(ctx, caller.Tenant.ID, store.AuditQuery{KeyID: k.ID}, store.Page{Limit: 20})
	d.Events = api.AuditViews(ctx, c.o.Store, caller.Tenant.ID, events)
	c.render(w, r, status, "key", page{Title: k.Name + " — API keys", Nav: "keys", Caller: &caller, Error: errMsg, Notice: notice, Data: d})
}

func (c *Console) revokePage(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if k, ok := c.loadKey(w, r); ok {
		c.render(w, r, http.StatusOK, "revoke", page{Title: "Revoke " + k.Name + " — API keys", Nav: "keys", Caller: &caller,
			Data: keyRow{KeyView: api.View(k, c.o.Now()), Owner: k.RecruiterID}})
	}
}

func (c *Console) keyAction(w http.ResponseWriter, r *http.Request) {
	k, ok := c.loadKey(w, r)
	if !ok {
		return
	}
	caller := callerOf(r)
	ctx, by, note := r.Context(), caller.Actor(surface), r.PostForm.Get("note")
	var err error
	var notice string
	var rolled *api.CreatedKey
	switch r.PathValue("action") {
	case "suspend":
		_, err = c.o.Keys.Suspend(ctx, caller.Tenant.ID, k.ID, note, by)
		notice = "The key is suspended: every call with it answers 401 AUTH_SUSPENDED_KEY until you resume it."
	case "resume":
		_, err = c.o.Keys.Resume(ctx, caller.Tenant.ID, k.ID, by)
		notice = "The key is active again."
	case "revoke":
		if r.PostForm.Get("confirm") != k.Name {
			c.render(w, r, http.StatusUnprocessableEntity, "revoke", page{Title: "Revoke " + k.Name + " — API keys", Nav: "keys", Caller: &caller,
				Error: "Type the key's name exactly to confirm.", Data: keyRow{KeyView: api.View(k, c.o.Now()), Owner: k.RecruiterID}})
			return
		}
		_, err = c.o.Keys.Revoke(ctx, caller.Tenant.ID, k.ID, note, by)
		notice = "The key is revoked. This cannot be undone."
	case "roll":
		hours, perr := strconv.Atoi(r.PostForm.Get("graceHours"))
		if perr != nil {
			hours = -1
		}
		var created api.CreatedKey
		created, err = c.o.Keys.Roll(ctx, caller.Tenant.ID, k.ID, time.Duration(hours)*time.Hour, by)
		if err == nil {
			rolled = &created
			nk, gerr := c.o.Store.GetAPIKey(ctx, caller.Tenant.ID, created.APIKey.ID)
			if gerr == nil {
				k = nk
			}
			notice = "The key was rolled. The old secret works for " + strconv.Itoa(hours) + " more hours."
		}
	default:
		c.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Nav: "keys", Caller: &caller, Error: "No such action."})
		return
	}
	if err != nil {
		c.renderKey(w, r, statusOf(err), k, message(err), "", nil)
		return
	}
	if rolled == nil {
		// Back to the key with a fresh GET, so a reload does not resend the form.
		http.Redirect(w, r, Prefix+"/keys/"+k.ID+"?done="+url.QueryEscape(r.PathValue("action")), http.StatusSeeOther)
		return
	}
	c.renderKey(w, r, http.StatusCreated, k, "", notice, rolled)
}

// Audit trail.

type auditData struct {
	Events []api.AuditEventView
	Filter url.Values
	Next   string
	First  bool
}

var auditFilters = []string{"environment", "actorKind", "actorId", "keyId", "surface", "action", "targetType", "targetId", "outcome", "since", "until"}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	q := r.URL.Query()
	f := store.AuditQuery{Environment: q.Get("environment"), ActorKind: q.Get("actorKind"), ActorID: q.Get("actorId"),
		KeyID: q.Get("keyId"), Surface: q.Get("surface"), Action: q.Get("action"), TargetType: q.Get("targetType"),
		TargetID: q.Get("targetId"), Outcome: q.Get("outcome")}
	var errMsg string
	for _, b := range []struct {
		name string
		dst  **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(b.name); v != "" {
			t, err := parseWhen(v)
			if err != nil {
				errMsg = "“" + b.name + "” must be a date or date and time."
				continue
			}
			*b.dst = &t
		}
	}
	if !caller.Admin {
		f.OwnerRecruiterID = caller.Recruiter.ID
	}
	d := auditData{Filter: url.Values{}, First: q.Get("cursor") == ""}
	for _, k := range auditFilters {
		if v := q.Get(k); v != "" {
			d.Filter.Set(k, v)
		}
	}
	if errMsg == "" {
		events, next, err := c.o.Store.ListAuditEvents(r.Context(), caller.Tenant.ID, f, store.Page{Limit: 50, Cursor: q.Get("cursor")})
		if err != nil {
			errMsg = "The audit trail could not be read: " + message(err)
		}
		d.Events = api.AuditViews(r.Context(), c.o.Store, caller.Tenant.ID, events)
		if next != "" {
			nq := url.Values{}
			for k, v := range d.Filter {
				nq[k] = v
			}
			nq.Set("cursor", next)
			d.Next = Prefix + "/audit?" + nq.Encode()
		}
	}
	c.render(w, r, http.StatusOK, "audit", page{Title: "Audit trail", Nav: "audit", Caller: &caller, Error: errMsg, Data: d})
}

// parseWhen takes what a date or datetime-local input sends, in UTC.
func parseWhen(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

func message(err error) string {
	if errors.Is(err, store.ErrBadCursor) {
		return "that page link is not valid any more"
	}
	te := tools.AsError(err)
	if te.Hint != "" {
		return te.Message + " (" + te.Hint + ")"
	}
	return te.Message
}

// statusOf is err's status from the one code table (500 for a code it
// does not know).
func statusOf(err error) int { return tools.AsError(err).Code.Status() }
