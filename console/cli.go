package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
)

// CLILogins is the recruiter's side of `veref login`: the same lookups and
// decisions as the workspace routes /v1/tenants/{tenant}/cli-sessions/….
type CLILogins interface {
	CLISession(ctx context.Context, tenantID, userCode string) (api.CLISessionView, error)
	DecideCLISession(ctx context.Context, c api.Caller, userCode string, approve bool, env string, scopes []string, surface string) (api.CLISessionView, error)
}

type cliData struct {
	Code    string
	Session *api.CLISessionView
	Scopes  []auth.ScopeInfo
}

// cliPage shows a login request by the code in the URL (the CLI opens
// /app/cli?code=…), or asks for the code.
func (c *Console) cliPage(w http.ResponseWriter, r *http.Request) {
	notice := "" // fixed texts: nothing from the URL is shown as the console's own word
	switch r.URL.Query().Get("done") {
	case "approved":
		notice = "Approved. Return to your terminal: veref receives its key now."
	case "denied":
		notice = "Denied. The terminal that asked gets no key."
	}
	c.renderCLI(w, r, http.StatusOK, strings.TrimSpace(r.URL.Query().Get("code")), notice, "")
}

func (c *Console) renderCLI(w http.ResponseWriter, r *http.Request, status int, code, notice, errMsg string) {
	caller := callerOf(r)
	d := cliData{Code: code, Scopes: auth.Catalogue}
	if code != "" && c.o.CLI != nil {
		v, err := c.o.CLI.CLISession(r.Context(), caller.Tenant.ID, code)
		var p *problem.Problem
		switch {
		case err == nil:
			d.Session = &v
		case errors.As(err, &p) && p.Status == http.StatusNotFound:
			if errMsg == "" {
				errMsg = "There is no login request with the code " + code + ". Check the code your terminal shows."
			}
		case errMsg == "":
			errMsg = "The login request could not be read: " + err.Error()
		}
	}
	c.render(w, r, status, "cli", page{Title: "Log in the CLI", Caller: &caller, Notice: notice, Error: errMsg, Data: d})
}

// decideCLI approves or denies from the page's form.
func (c *Console) decideCLI(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	code := strings.TrimSpace(r.PostForm.Get("code"))
	approve := r.PostForm.Get("decision") == "approve"
	scopes := r.PostForm["scope"]
	if scopes == nil {
		scopes = []string{}
	}
	if c.o.CLI == nil {
		c.renderCLI(w, r, http.StatusServiceUnavailable, code, "", "CLI logins are not available on this server.")
		return
	}
	v, err := c.o.CLI.DecideCLISession(r.Context(), caller, code, approve, r.PostForm.Get("environment"), scopes, surface)
	if err != nil {
		status, msg := http.StatusInternalServerError, err.Error()
		var p *problem.Problem
		if errors.As(err, &p) {
			status, msg = p.Status, p.Detail
		}
		c.renderCLI(w, r, status, code, "", msg)
		return
	}
	done := "denied"
	if approve {
		done = "approved"
	}
	http.Redirect(w, r, Prefix+"/cli?"+url.Values{"code": {v.UserCode}, "done": {done}}.Encode(), http.StatusSeeOther)
}
