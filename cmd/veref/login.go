package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cli/browser"
	"github.com/spf13/cobra"

	"github.com/verefwork/veref/problem"
)

// cliAuthorization is the server's answer to POST /v1/cli/sessions.
type cliAuthorization struct {
	DeviceCode              string `json:"deviceCode"`
	UserCode                string `json:"userCode"`
	VerificationURI         string `json:"verificationUri"`
	VerificationURIComplete string `json:"verificationUriComplete"`
	ExpiresIn               int    `json:"expiresIn"`
	Interval                int    `json:"interval"`
}

// cliLogin is the redeemed session.
type cliLogin struct {
	APIKey struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Prefix      string   `json:"prefix"`
		Environment string   `json:"environment"`
		RecruiterID string   `json:"recruiterId"`
		Scopes      []string `json:"scopes"`
	} `json:"apiKey"`
	Plaintext string `json:"plaintext"`
	TenantID  string `json:"tenantId"`
}

// loginResult is what login prints; never the key.
type loginResult struct {
	APIURL           string   `json:"apiUrl"`
	TenantID         string   `json:"tenantId"`
	RecruiterID      string   `json:"recruiterId"`
	KeyID            string   `json:"keyId"`
	KeyName          string   `json:"keyName"`
	KeyPrefix        string   `json:"keyPrefix"`
	Environment      string   `json:"environment"`
	Scopes           []string `json:"scopes"`
	CredentialSource string   `json:"credentialSource"`
}

func (c *cli) loginCmd() *cobra.Command {
	var appURL string
	var noBrowser bool
	var out output
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in: approve this machine in the console, then keep its key in the credential store",
		Long: `Starts a login the way the OAuth device flow does: veref opens the recruiter
console (or, with --no-browser, prints its URL) with a one-time code; a
recruiter signed in there picks the environment and scopes and approves; the
CLI then receives a new API key named "CLI on <this host>" and keeps it in
the OS credential store (macOS Keychain, Secret Service, Windows Credential
Manager) under service "veref" and the API URL as account.

Without a credential store, set VEREF_API_KEY instead, or opt into a plaintext
file with VEREF_ALLOW_PLAINTEXT_CLI_CREDENTIALS=1 ($XDG_CONFIG_HOME/veref/credentials.json,
file 0600, folder 0700).

Keys are used in this order: VEREF_API_KEY, the credential store, the file.`,
		Args: exactArgs(0, "[flags]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := out.asJSON()
			if err != nil {
				return err
			}
			if appURL == "" {
				appURL = strings.TrimSpace(c.getenv("VEREF_APP_URL"))
			}
			res, err := c.login(cmd.Context(), appURL, noBrowser)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(c.stdout, res)
			}
			scopes := "all scopes"
			if len(res.Scopes) > 0 {
				scopes = strings.Join(res.Scopes, ", ")
			}
			fmt.Fprintf(c.stdout, "Logged in to %s as %s of tenant %s.\n", cell(res.APIURL), cell(res.RecruiterID), cell(res.TenantID))
			fmt.Fprintf(c.stdout, "Key %q (%s, %s, %s) is stored in the %s.\n", cell(res.KeyName), cell(res.KeyPrefix), res.Environment, scopes,
				map[string]string{sourceKeychain: "credential store", sourceFile: "file " + displayPath(credentialsPath(c.getenv))}[res.CredentialSource])
			return nil
		},
	}
	c.apiURLFlag(cmd)
	cmd.Flags().StringVar(&appURL, "app-url", "", "the recruiter console URL (default $VEREF_APP_URL, else the one the server names)")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the URL and the code instead of opening a browser")
	out.flags(cmd.Flags(), true)
	return cmd
}

func (c *cli) login(ctx context.Context, appURL string, noBrowser bool) (loginResult, error) {
	base, err := apiBase(c.apiURL, c.getenv)
	if err != nil {
		return loginResult{}, err
	}
	// Choose where the key goes first: a key is never minted with nowhere to go.
	store, err := chooseStorage(base, c.getenv)
	if err != nil {
		return loginResult{}, err
	}
	client := &apiClient{base: base, http: newHTTPClient()}
	host, _ := os.Hostname()
	body, _ := json.Marshal(map[string]string{"clientName": "veref " + version, "hostname": host})
	raw, err := client.do(ctx, "POST", "/v1/cli/sessions", body, nil)
	if err != nil {
		return loginResult{}, err
	}
	var a cliAuthorization
	if err := json.Unmarshal(raw, &a); err != nil || a.DeviceCode == "" || a.UserCode == "" {
		return loginResult{}, fmt.Errorf("%s did not start a login (is it a Veref server?)", base)
	}
	open := a.VerificationURIComplete
	if appURL != "" {
		open = strings.TrimRight(appURL, "/") + "/cli?code=" + url.QueryEscape(a.UserCode)
	}
	fmt.Fprintf(c.stderr, "To log in, approve this request in the Veref console:\n\n  %s\n\nCheck that the console shows the code  %s\n\n", cell(open), cell(a.UserCode))
	if !noBrowser {
		browser.Stdout, browser.Stderr = c.stderr, c.stderr
		if err := browser.OpenURL(open); err != nil {
			fmt.Fprintf(c.stderr, "Could not open a browser (%s); open the URL above yourself.\n", oneLine(err))
		}
	}
	if v := c.getenv("VEREF_API_KEY"); v != "" {
		fmt.Fprintln(c.stderr, "Note: VEREF_API_KEY is set and is used before the stored key; unset it to use this login.")
	}
	login, err := c.pollLogin(ctx, client, a)
	if err != nil {
		return loginResult{}, err
	}
	if err := store.save(base, login.Plaintext, login.APIKey.ID, time.Now()); err != nil {
		// The key exists only in this process: revoke it rather than lose it live.
		rc := &apiClient{base: base, key: login.Plaintext, http: newHTTPClient()}
		if _, rerr := rc.do(context.WithoutCancel(ctx), "POST", "/v1/api/me/revoke", nil, nil); rerr != nil {
			return loginResult{}, fmt.Errorf("%v; revoking the new key %s also failed (%v): revoke it in the console", err, login.APIKey.ID, rerr)
		}
		return loginResult{}, fmt.Errorf("%v; the new key was revoked", err)
	}
	return loginResult{APIURL: base, TenantID: login.TenantID, RecruiterID: login.APIKey.RecruiterID, KeyID: login.APIKey.ID,
		KeyName: login.APIKey.Name, KeyPrefix: login.APIKey.Prefix, Environment: login.APIKey.Environment,
		Scopes: login.APIKey.Scopes, CredentialSource: store.source}, nil
}

// pollUnit is the unit of the server's interval: seconds, shortened by tests.
var pollUnit = time.Second

// pollLogin asks for the key every interval until the login is approved,
// denied or expired, as RFC 8628 describes.
func (c *cli) pollLogin(ctx context.Context, client *apiClient, a cliAuthorization) (cliLogin, error) {
	interval := time.Duration(max(a.Interval, 1)) * pollUnit
	deadline := time.Now().Add(time.Duration(max(a.ExpiresIn, 1)) * time.Second)
	progress := c.progress()
	defer progress("")
	body, _ := json.Marshal(map[string]string{"deviceCode": a.DeviceCode})
	failures := 0 // in a row: a server restarting or a network blip is waited out, a few times
	for {
		progress(fmt.Sprintf("Waiting for approval of %s (expires in %s)…", a.UserCode, time.Until(deadline).Round(time.Second)))
		select {
		case <-ctx.Done():
			return cliLogin{}, ctx.Err()
		case <-time.After(interval):
		}
		raw, err := client.do(ctx, "POST", "/v1/cli/sessions/token", body, nil)
		if err == nil {
			var login cliLogin
			if err := json.Unmarshal(raw, &login); err != nil || login.Plaintext == "" {
				return cliLogin{}, fmt.Errorf("the server's answer to the login carries no key")
			}
			return login, nil
		}
		var p cliProblem
		if transient := !errors.As(err, &p) || p.Status >= 500; transient {
			if failures++; failures > 3 || ctx.Err() != nil {
				return cliLogin{}, err
			}
			continue
		}
		failures = 0
		switch p.Code {
		case problem.AuthorizationPending:
		case problem.SlowDown:
			interval += 5 * pollUnit
		case problem.AccessDenied:
			return cliLogin{}, authError{"the login was denied in the console; nothing was stored"}
		case problem.ExpiredToken:
			return cliLogin{}, authError{"the login expired before it was approved (" + p.Detail + "); run veref login again"}
		default:
			return cliLogin{}, err
		}
	}
}

func (c *cli) logoutCmd() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored key on the server and delete it from this machine",
		Long: `Revokes the key veref login stored for the API URL (POST /v1/api/me/revoke),
then deletes it from the credential store and the plaintext file. A key
in VEREF_API_KEY is not touched.`,
		Args: exactArgs(0, "[flags]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := out.asJSON()
			if err != nil {
				return err
			}
			return c.logout(cmd.Context(), asJSON)
		},
	}
	c.apiURLFlag(cmd)
	out.flags(cmd.Flags(), true)
	return cmd
}

func (c *cli) logout(ctx context.Context, asJSON bool) error {
	base, err := apiBase(c.apiURL, c.getenv)
	if err != nil {
		return err
	}
	if c.getenv("VEREF_API_KEY") != "" {
		fmt.Fprintln(c.stderr, "Note: VEREF_API_KEY is set; logout does not touch it.")
	}
	key, source, err := storedCredential(base, c.getenv)
	if err != nil {
		return err
	}
	res := map[string]any{"apiUrl": base, "revoked": false, "deleted": false}
	if key == "" {
		if asJSON {
			return writeJSON(c.stdout, res)
		}
		fmt.Fprintf(c.stdout, "Not logged in to %s: no stored key.\n", cell(base))
		return nil
	}
	client := &apiClient{base: base, key: key, http: newHTTPClient()}
	var note string
	raw, err := client.do(ctx, "POST", "/v1/api/me/revoke", nil, nil)
	var p cliProblem
	switch {
	case err == nil:
		var v struct{ ID, Name string }
		_ = json.Unmarshal(raw, &v)
		note = "revoked key " + cell(v.Name) + " (" + v.ID + ")"
		res["revoked"], res["keyId"] = true, v.ID
	case errors.As(err, &p) && p.Status == 401:
		// Already revoked, expired or unknown: it opens nothing, so delete it.
		note = "the key was no longer valid (" + string(p.Code) + ")"
	default:
		return fmt.Errorf("%w; the key was kept, run veref logout again", err)
	}
	if _, err := forget(base, c.getenv); err != nil {
		return err
	}
	res["deleted"], res["credentialSource"] = true, source
	if asJSON {
		return writeJSON(c.stdout, res)
	}
	fmt.Fprintf(c.stdout, "Logged out of %s: %s, and deleted it from the %s.\n", cell(base), note, source)
	return nil
}

func newHTTPClient() *http.Client { return &http.Client{Timeout: 60 * time.Second} }
