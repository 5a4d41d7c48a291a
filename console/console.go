// Package console is the recruiter console served at /app/: server-rendered
// pages over the same key service, audit trail and sessions as the
// workspace routes. One page is one template in templates/ and one handler
// registered in routes; every asset is embedded, so it works offline.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/devidp"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/app"

// Options wire a console.
type Options struct {
	Store store.Store
	Keys  *api.KeyService
	// Sessions verifies a session token and names its recruiter (the
	// server's SessionCaller).
	Sessions func(ctx context.Context, token string) (api.Caller, error)
	// Dev, when set, offers the development sign-in (serve --dev only).
	Dev *devidp.Provider
	// DevTenant is the tenant whose recruiters the dev sign-in lists.
	DevTenant string
	// ClerkPublishableKey names the Clerk instance whose frontend the
	// production sign-in page loads.
	ClerkPublishableKey string
	// CLI approves and denies `veref login` requests (the API server).
	CLI CLILogins
	// AgentTokens, when set, shows a key's Ask Veref budget and today's
	// spend on its page (the server's own budget, as /v1/api/me shows it).
	AgentTokens *quota.AgentTokens
	Now         func() time.Time
	Log         zerolog.Logger
}

// Console is the /app/ handler.
type Console struct {
	o     Options
	mux   *http.ServeMux
	pages map[string]*template.Template
	// clerkFrontend is the Clerk frontend API host from the publishable key.
	clerkFrontend string
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	if o.ClerkPublishableKey != "" {
		host, err := clerkFrontendAPI(o.ClerkPublishableKey)
		if err != nil {
			return nil, err
		}
		c.clerkFrontend = host
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET "+Prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/keys", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET "+Prefix+"/sign-in", c.signIn)
	c.mux.HandleFunc("POST "+Prefix+"/sign-in/dev", c.form(c.devSignIn))
	c.mux.HandleFunc("POST "+Prefix+"/sign-out", c.form(c.signOut))
	c.mux.HandleFunc("GET "+Prefix+"/keys", c.signedIn(c.keysPage))
	c.mux.HandleFunc("POST "+Prefix+"/keys", c.form(c.signedIn(c.createKey)))
	c.mux.HandleFunc("GET "+Prefix+"/keys/{id}", c.signedIn(c.keyPage))
	c.mux.HandleFunc("GET "+Prefix+"/keys/{id}/revoke", c.signedIn(c.revokePage))
	c.mux.HandleFunc("POST "+Prefix+"/keys/{id}/{action}", c.form(c.signedIn(c.keyAction)))
	c.mux.HandleFunc("GET "+Prefix+"/audit", c.signedIn(c.auditPage))
	c.mux.HandleFunc("GET "+Prefix+"/cli", c.signedIn(c.cliPage))
	c.mux.HandleFunc("POST "+Prefix+"/cli", c.form(c.signedIn(c.decideCLI)))
	c.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Error: "There is no page at " + r.URL.Path + "."})
	})
}

// ServeHTTP sets the security headers every page shares, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", c.csp())
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// csp allows no inline script anywhere. Only the production sign-in needs
// Clerk's frontend (its script, its API, and the inline styles it injects).
func (c *Console) csp() string {
	base := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
	if c.clerkFrontend == "" {
		return base
	}
	origin := "https://" + c.clerkFrontend
	return "default-src 'self'; script-src 'self' " + origin + "; style-src 'self' 'unsafe-inline'; img-src 'self' data: https://img.clerk.com; " +
		"connect-src 'self' " + origin + "; frame-src " + origin + "; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
}

// clerkFrontendAPI decodes a publishable key (pk_test_… / pk_live_…): its
// tail is the base64 of the instance's frontend API host and a "$".
func clerkFrontendAPI(pk string) (string, error) {
	rest, ok := strings.CutPrefix(pk, "pk_test_")
	if !ok {
		rest, ok = strings.CutPrefix(pk, "pk_live_")
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "="))
	host := strings.TrimSuffix(string(b), "$")
	if !ok || err != nil || !strings.HasSuffix(string(b), "$") || host == "" || strings.ContainsAny(host, "/ \"'<>") {
		return "", errors.New("CLERK_PUBLISHABLE_KEY is not a Clerk publishable key (pk_test_… or pk_live_…)")
	}
	return host, nil
}

// page is what every template receives.
type page struct {
	Title   string
	Nav     string
	Caller  *api.Caller
	CSRF    string
	Error   string
	Notice  string
	Data    any
	Dev     bool
	ClerkJS string
	ClerkPK string
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.CSRF == "" {
		p.CSRF = csrfToken(w, r)
	}
	p.Dev = c.o.Dev != nil
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		c.o.Log.Error().Err(err).Str("page", name).Msg("rendering a console page")
	}
}

// Sessions: the __session cookie, as Clerk's frontend sets it.

type callerKey struct{}

func callerOf(r *http.Request) api.Caller { return r.Context().Value(callerKey{}).(api.Caller) }

// signedIn runs h for a verified recruiter and sends anyone else to sign in.
func (c *Console) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(api.SessionCookieName)
		if err != nil || ck.Value == "" {
			c.toSignIn(w, r, "")
			return
		}
		caller, err := c.o.Sessions(r.Context(), ck.Value)
		if err != nil {
			var p *problem.Problem
			if errors.As(err, &p) && p.Status >= 500 {
				c.render(w, r, p.Status, "error", page{Title: "Unavailable", Error: p.Detail})
				return
			}
			msg := "Your session has ended; sign in again."
			if errors.As(err, &p) && p.Status == http.StatusForbidden {
				msg = p.Detail + "."
			}
			c.toSignIn(w, r, msg)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	}
}

func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Method != http.MethodGet {
		c.render(w, r, http.StatusUnauthorized, "error", page{Title: "Signed out", Error: "Your session has ended; sign in again."})
		return
	}
	q := url.Values{"next": {r.URL.RequestURI()}}
	if msg != "" {
		q.Set("msg", msg)
	}
	http.Redirect(w, r, Prefix+"/sign-in?"+q.Encode(), http.StatusSeeOther)
}

// CSRF: a random token in a SameSite=Strict cookie that every form echoes
// (double submit), plus the browser's own word that the form came from
// this origin. Either alone would do against most browsers; both cost nothing.

const csrfCookie = "veref_csrf"

func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: Prefix + "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return v
}

func (c *Console) form(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		ck, err := r.Cookie(csrfCookie)
		site := r.Header.Get("Sec-Fetch-Site")
		if err != nil || r.ParseForm() != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostForm.Get("csrf"))) != 1 ||
			(site != "" && site != "same-origin") {
			c.render(w, r, http.StatusForbidden, "error", page{Title: "Refused",
				Error: "This form was not sent from this console (or it is too old). Go back, reload the page and try again."})
			return
		}
		h(w, r)
	}
}
