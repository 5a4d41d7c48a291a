package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

func (c *cli) migrateCmd() *cobra.Command {
	var dev bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Args:  exactArgs(0, "[--dev]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(dev, c.getenv)
			if err != nil {
				return err
			}
			st, err := cfg.open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Migrate(cmd.Context()); err != nil {
				return fmt.Errorf("migrating: %w", err)
			}
			fmt.Fprintf(c.stdout, "migrated %s\n", redactURL(cfg.databaseURL))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dev, "dev", false, "act on the serve --dev database")
	return cmd
}

// adminEnv is what every admin command needs: the store, the hasher and how
// to print.
type adminEnv struct {
	st      store.Store
	hasher  *auth.Hasher
	json    bool
	out     io.Writer
	maxKeys int
	dev     bool
	limits  limitsConfig
}

func (e *adminEnv) print(v any, table func(w *tabwriter.Writer)) error {
	if e.json {
		return writeJSON(e.out, v)
	}
	w := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func (c *cli) adminCmd() *cobra.Command {
	admin := groupCmd("admin", "Operator commands on the database: tenants, recruiters, keys")
	tenants := groupCmd("tenants", "Manage tenants")
	tenants.AddCommand(c.adminLeaf("create", "Create a tenant", c.tenantsCreate))
	recruiters := groupCmd("recruiters", "Manage recruiters")
	recruiters.AddCommand(c.adminLeaf("create", "Create a recruiter", c.recruitersCreate))
	keys := groupCmd("keys", "Manage API keys")
	keys.AddCommand(c.adminLeaf("create", "Create an API key (the plaintext is shown once)", c.keysCreate),
		c.adminLeaf("list", "List a tenant's API keys", c.keysList),
		c.adminLeaf("revoke", "Revoke an API key", c.keysRevoke),
		c.adminLeaf("suspend", "Suspend an API key until it is resumed", c.keysSuspend),
		c.adminLeaf("resume", "Resume a suspended API key", c.keysResume),
		c.adminLeaf("roll", "Roll an API key: a new secret, the old one ending after --grace-hours", c.keysRoll),
		c.adminLeaf("limits", "Change an API key's rate limit, IP allowlist or agent token budget", c.keysLimits))
	admin.AddCommand(tenants, recruiters, keys,
		c.adminLeaf("session-token", "Print a workspace session token from the --dev identity provider", c.sessionToken))
	return admin
}

// adminFlags are the string flags of one admin command.
type adminFlags map[string]*string

// adminLeaf is an admin command: its own flags from define, then --dev and
// the output flags, then the store opened and migrated for do.
func (c *cli) adminLeaf(use, short string, define func(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error) *cobra.Command {
	var dev bool
	var out output
	f := adminFlags{}
	cmd := &cobra.Command{Use: use, Short: short, Args: exactArgs(0, "[flags]")}
	do := define(cmd.Flags(), f)
	cmd.Flags().BoolVar(&dev, "dev", false, "act on the serve --dev database with its development pepper")
	out.flags(cmd.Flags(), true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		// Flags whose help says "(required)" are checked before the store is opened.
		var missing error
		cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			if missing == nil && strings.HasSuffix(fl.Usage, "(required)") && strings.TrimSpace(fl.Value.String()) == "" {
				missing = usageError{"--" + fl.Name + " is required"}
			}
		})
		if missing != nil {
			return missing
		}
		asJSON, err := out.asJSON()
		if err != nil {
			return err
		}
		cfg, err := loadConfig(dev, c.getenv)
		if err != nil {
			return err
		}
		if w := cfg.devWarning(); w != "" {
			fmt.Fprintln(c.stderr, w)
		}
		st, err := cfg.open(cmd.Context())
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.Migrate(cmd.Context()); err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
		hasher, err := auth.NewHasher(cfg.pepper)
		if err != nil {
			return err
		}
		return do(cmd.Context(), &adminEnv{st: st, hasher: hasher, json: asJSON, out: c.stdout, maxKeys: cfg.maxActiveKeys, dev: dev, limits: cfg.limits})
	}
	return cmd
}

func (f adminFlags) str(fs *pflag.FlagSet, name, usage string) { f[name] = fs.String(name, "", usage) }

func (c *cli) tenantsCreate(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "id", "tenant id (required)")
	f.str(fs, "name", "display name (required)")
	f.str(fs, "clerk-org-id", "Clerk organization id whose members manage this tenant's keys")
	return func(ctx context.Context, e *adminEnv) error {
		t := store.Tenant{ID: *f["id"], Name: *f["name"], ClerkOrgID: *f["clerk-org-id"], CreatedAt: time.Now().UTC()}
		if err := e.st.CreateTenant(ctx, t); err != nil {
			return explain(err, "tenant "+t.ID)
		}
		return e.print(t, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created tenant\t%s\t%s\n", cell(t.ID), cell(t.Name)) })
	}
}

func (c *cli) recruitersCreate(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "id", "recruiter id (required)")
	f.str(fs, "email", "e-mail (required)")
	f.str(fs, "clerk-user-id", "Clerk user id of this recruiter")
	isAdmin := fs.Bool("admin", false, "the recruiter manages every key of the tenant")
	return func(ctx context.Context, e *adminEnv) error {
		if _, err := e.st.GetTenant(ctx, *f["tenant"]); err != nil {
			return explain(err, "tenant "+*f["tenant"])
		}
		r := store.Recruiter{ID: *f["id"], TenantID: *f["tenant"], Email: *f["email"], ClerkUserID: *f["clerk-user-id"],
			Admin: *isAdmin, CreatedAt: time.Now().UTC()}
		if err := e.st.CreateRecruiter(ctx, r); err != nil {
			return explain(err, "recruiter "+r.ID)
		}
		return e.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created recruiter\t%s\t%s\n", cell(r.ID), cell(r.Email)) })
	}
}

func (c *cli) keysCreate(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "recruiter", "recruiter id who owns the key (required)")
	f.str(fs, "name", "key name, 3 to 50 characters (required)")
	f.str(fs, "env", "test or live (required)")
	f.str(fs, "scopes", "comma-separated scopes; empty means all")
	f.str(fs, "expires-at", "RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z")
	limitFlags(fs, f)
	return func(ctx context.Context, e *adminEnv) error {
		req := api.NewKey{TenantID: *f["tenant"], RecruiterID: *f["recruiter"], Name: *f["name"], Environment: auth.Environment(*f["env"])}
		var err error
		if req.LimitsChange, err = limitsFrom(fs, f); err != nil {
			return err
		}
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
		created, err := e.keyService().Create(ctx, req, api.Actor{Kind: store.ActorOperator, ID: "veref-admin"})
		if err != nil {
			return explain(err, "key")
		}
		return e.print(created, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "created key\t%s\t%s\t%s\n", created.APIKey.ID, cell(created.APIKey.Name), created.APIKey.Environment)
			fmt.Fprintf(w, "plaintext (shown once)\t%s\n", created.Plaintext)
		})
	}
}

func (c *cli) keysList(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	return func(ctx context.Context, e *adminEnv) error {
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
		if e.json {
			return writeJSON(e.out, all)
		}
		rows := make([][]string, 0, len(all))
		for _, k := range all {
			scopes := strings.Join(k.Scopes, ",")
			if scopes == "" {
				scopes = "all"
			}
			last := "never"
			if k.LastUsedAt != nil {
				last = k.LastUsedAt.Format(time.RFC3339)
			}
			rows = append(rows, []string{k.ID, k.Name, k.Prefix, string(k.Environment), string(k.Status), scopes, last})
		}
		return table(e.out, []string{"ID", "NAME", "PREFIX", "ENV", "STATUS", "SCOPES", "LAST USED"}, rows)
	}
}

func (c *cli) keysRevoke(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "id", "key id (required)")
	f.str(fs, "note", "why, recorded with the revocation")
	return func(ctx context.Context, e *adminEnv) error {
		ks := &api.KeyService{Store: e.st, Hasher: e.hasher, Now: time.Now, MaxActive: e.maxKeys}
		v, err := ks.Revoke(ctx, *f["tenant"], *f["id"], *f["note"], api.Actor{Kind: store.ActorOperator, ID: "veref-admin"})
		if err != nil {
			return explain(err, "key "+*f["id"])
		}
		return e.print(v, func(w *tabwriter.Writer) { fmt.Fprintf(w, "revoked key\t%s\t%s\n", v.ID, cell(v.Name)) })
	}
}
