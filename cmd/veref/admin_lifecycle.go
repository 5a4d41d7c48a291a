package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/devidp"
	"github.com/verefwork/veref/store"
)

// operator is how these commands appear in the audit trail.
var operator = api.Actor{Kind: store.ActorOperator, ID: "veref-admin", Surface: store.SurfaceCLI}

func (e *adminEnv) keyService() *api.KeyService {
	return &api.KeyService{Store: e.st, Hasher: e.hasher, Now: time.Now, MaxActive: e.maxKeys,
		DefaultRate: e.limits.defaultRate, DefaultAgentTokens: e.limits.agentDailyTokens}
}

func (c *cli) keysSuspend(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "id", "key id (required)")
	f.str(fs, "note", "why, recorded with the suspension")
	return func(ctx context.Context, e *adminEnv) error {
		v, err := e.keyService().Suspend(ctx, *f["tenant"], *f["id"], *f["note"], operator)
		if err != nil {
			return explain(err, "key "+*f["id"])
		}
		return e.print(v, func(w *tabwriter.Writer) { fmt.Fprintf(w, "suspended key\t%s\t%s\n", v.ID, cell(v.Name)) })
	}
}

func (c *cli) keysResume(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "id", "key id (required)")
	return func(ctx context.Context, e *adminEnv) error {
		v, err := e.keyService().Resume(ctx, *f["tenant"], *f["id"], operator)
		if err != nil {
			return explain(err, "key "+*f["id"])
		}
		return e.print(v, func(w *tabwriter.Writer) { fmt.Fprintf(w, "resumed key\t%s\t%s\n", v.ID, cell(v.Name)) })
	}
}

func (c *cli) keysRoll(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "id", "key id (required)")
	grace := fs.Int("grace-hours", 24, "hours the old secret keeps working, 0 to "+strconv.Itoa(api.MaxRollGraceHours))
	return func(ctx context.Context, e *adminEnv) error {
		if *grace < 0 || *grace > api.MaxRollGraceHours {
			return usageError{fmt.Sprintf("--grace-hours must be 0 to %d", api.MaxRollGraceHours)}
		}
		created, err := e.keyService().Roll(ctx, *f["tenant"], *f["id"], time.Duration(*grace)*time.Hour, operator)
		if err != nil {
			return explain(err, "key "+*f["id"])
		}
		return e.print(created, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "rolled key\t%s\t→ %s\t%s\n", *f["id"], created.APIKey.ID, cell(created.APIKey.Name))
			fmt.Fprintf(w, "old secret works for\t%dh\n", *grace)
			fmt.Fprintf(w, "plaintext (shown once)\t%s\n", created.Plaintext)
		})
	}
}

// sessionToken signs a workspace session with the --dev identity provider,
// for curl against /v1/tenants/… on a serve --dev server.
func (c *cli) sessionToken(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "recruiter", "recruiter id to sign in as (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the session lasts, at most 24h")
	return func(ctx context.Context, e *adminEnv) error {
		if !e.dev {
			return usageError{"session tokens come from the development identity provider: add --dev (production sessions come from Clerk)"}
		}
		if *ttl <= 0 || *ttl > devidp.MaxTTL {
			return usageError{"--ttl must be more than 0 and at most 24h"}
		}
		p, err := devidp.Load(ctx, e.st)
		if err != nil {
			return err
		}
		s, err := devidp.SessionFor(ctx, e.st, *f["tenant"], *f["recruiter"])
		if err != nil {
			return explain(err, "recruiter "+*f["recruiter"])
		}
		tok, err := p.Sign(s, *ttl)
		if err != nil {
			return err
		}
		if e.json {
			return writeJSON(e.out, map[string]any{"token": tok, "expiresAt": time.Now().Add(*ttl).UTC(), "tenant": *f["tenant"], "recruiter": *f["recruiter"]})
		}
		_, err = fmt.Fprintln(e.out, tok)
		return err
	}
}
