package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.Bool("dev", false, "act on the serve --dev database")
	if err := fs.Parse(args); err != nil {
		return usageError{}
	}
	cfg, err := loadConfig(*dev, getenv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	fmt.Fprintf(stdout, "migrated %s\n", redactURL(cfg.databaseURL))
	return nil
}

// adminEnv is what every admin command needs: the store, the hasher and how
// to print.
type adminEnv struct {
	st      store.Store
	hasher  *auth.Hasher
	json    bool
	out     io.Writer
	maxKeys int
}

func (e *adminEnv) print(v any, table func(w *tabwriter.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func cmdAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usageText)
		return usageError{}
	}
	group, verb, rest := args[0], args[1], args[2:]
	fs := flag.NewFlagSet("admin "+group+" "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.Bool("dev", false, "act on the serve --dev database with its development pepper")
	asJSON := fs.Bool("json", false, "print JSON")
	f := map[string]*string{}
	str := func(name, usage string) { f[name] = fs.String(name, "", usage) }
	admin := fs.Bool("admin", false, "the recruiter manages every key of the tenant")

	var do func(e *adminEnv) error
	switch group + " " + verb {
	case "tenants create":
		str("id", "tenant id (required)")
		str("name", "display name (required)")
		str("clerk-org-id", "Clerk organization id whose members manage this tenant's keys")
		do = func(e *adminEnv) error {
			if err := need(f, "id", "name"); err != nil {
				return err
			}
			t := store.Tenant{ID: *f["id"], Name: *f["name"], ClerkOrgID: *f["clerk-org-id"], CreatedAt: time.Now().UTC()}
			if err := e.st.CreateTenant(ctx, t); err != nil {
				return explain(err, "tenant "+t.ID)
			}
			return e.print(t, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created tenant\t%s\t%s\n", t.ID, t.Name) })
		}
	case "recruiters create":
		str("tenant", "tenant id (required)")
		str("id", "recruiter id (required)")
		str("email", "e-mail (required)")
		str("clerk-user-id", "Clerk user id of this recruiter")
		do = func(e *adminEnv) error {
			if err := need(f, "tenant", "id", "email"); err != nil {
				return err
			}
			if _, err := e.st.GetTenant(ctx, *f["tenant"]); err != nil {
				return explain(err, "tenant "+*f["tenant"])
			}
			r := store.Recruiter{ID: *f["id"], TenantID: *f["tenant"], Email: *f["email"], ClerkUserID: *f["clerk-user-id"],
				Admin: *admin, CreatedAt: time.Now().UTC()}
			if err := e.st.CreateRecruiter(ctx, r); err != nil {
				return explain(err, "recruiter "+r.ID)
			}
			return e.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created recruiter\t%s\t%s\n", r.ID, r.Email) })
		}
	case "keys create":
		str("tenant", "tenant id (required)")
		str("recruiter", "recruiter id who owns the key (required)")
		str("name", "key name, 3 to 50 characters (required)")
		str("env", "test or live (required)")
		str("scopes", "comma-separated scopes; empty means all")
		str("expires-at", "RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z")
		do = func(e *adminEnv) error {
			if err := need(f, "tenant", "recruiter", "name", "env"); err != nil {
				return err
			}
			req := api.NewKey{TenantID: *f["tenant"], RecruiterID: *f["recruiter"], Name: *f["name"], Environment: auth.Environment(*f["env"])}
			if s := strings.TrimSpace(*f["scopes"]); s != "" {
				req.Scopes = strings.Split(s, ",")
			}
			if s := *f["expires-at"]; s != "" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					return usageError{"--expires-at must be RFC 3339, e.g. 2027-01-01T00:00:00Z"}
				}
				req.ExpiresAt = &t
			}
			if _, err := e.st.GetTenant(ctx, req.TenantID); err != nil {
				return explain(err, "tenant "+req.TenantID)
			}
			ks := &api.KeyService{Store: e.st, Hasher: e.hasher, Now: time.Now, MaxActive: e.maxKeys}
			created, err := ks.Create(ctx, req, api.Actor{Kind: store.ActorOperator, ID: "veref-admin"})
			if err != nil {
				return explain(err, "key")
			}
			return e.print(created, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "created key\t%s\t%s\t%s\n", created.APIKey.ID, created.APIKey.Name, created.APIKey.Environment)
				fmt.Fprintf(w, "plaintext (shown once)\t%s\n", created.Plaintext)
			})
		}
	case "keys list":
		str("tenant", "tenant id (required)")
		do = func(e *adminEnv) error {
			if err := need(f, "tenant"); err != nil {
				return err
			}
			var all []api.KeyView
			page := store.Page{Limit: 200}
			for {
				keys, next, err := e.st.ListAPIKeys(ctx, *f["tenant"], store.APIKeyFilter{}, page)
				if err != nil {
					return explain(err, "keys")
				}
				for _, k := range keys {
					all = append(all, api.View(k, time.Now()))
				}
				if next == "" {
					break
				}
				page.Cursor = next
			}
			if all == nil {
				all = []api.KeyView{}
			}
			return e.print(all, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tPREFIX\tENV\tSTATUS\tSCOPES\tLAST USED")
				for _, k := range all {
					scopes := strings.Join(k.Scopes, ",")
					if scopes == "" {
						scopes = "all"
					}
					last := "never"
					if k.LastUsedAt != nil {
						last = k.LastUsedAt.Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.Environment, k.Status, scopes, last)
				}
			})
		}
	case "keys revoke":
		str("tenant", "tenant id (required)")
		str("id", "key id (required)")
		str("note", "why, recorded with the revocation")
		do = func(e *adminEnv) error {
			if err := need(f, "tenant", "id"); err != nil {
				return err
			}
			ks := &api.KeyService{Store: e.st, Hasher: e.hasher, Now: time.Now, MaxActive: e.maxKeys}
			v, err := ks.Revoke(ctx, *f["tenant"], *f["id"], *f["note"], api.Actor{Kind: store.ActorOperator, ID: "veref-admin"})
			if err != nil {
				return explain(err, "key "+*f["id"])
			}
			return e.print(v, func(w *tabwriter.Writer) { fmt.Fprintf(w, "revoked key\t%s\t%s\n", v.ID, v.Name) })
		}
	default:
		return usageError{fmt.Sprintf("unknown admin command %q; see veref --help", group+" "+verb)}
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{}
	}
	cfg, err := loadConfig(*dev, getenv)
	if err != nil {
		return err
	}
	if w := cfg.devWarning(); w != "" {
		fmt.Fprintln(stderr, w)
	}
	st, err := openStore(ctx, cfg.databaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	hasher, err := auth.NewHasher(cfg.pepper)
	if err != nil {
		return err
	}
	return do(&adminEnv{st: st, hasher: hasher, json: *asJSON, out: stdout, maxKeys: cfg.maxActiveKeys})
}

func need(f map[string]*string, names ...string) error {
	for _, n := range names {
		if strings.TrimSpace(*f[n]) == "" {
			return usageError{"--" + n + " is required"}
		}
	}
	return nil
}
