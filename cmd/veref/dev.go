package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

const (
	devTenant    = "demo"
	devRecruiter = "recruiter_demo"
	// devMember is a recruiter without admin rights, so the console's
	// member view can be tried next to the admin's.
	devMember = "recruiter_member"
)

// bootstrapDev seeds the demo data, then says where the console is and how
// to get a session for curl.
func bootstrapDev(ctx context.Context, st store.Store, hasher *auth.Hasher, base, dbURL string, out io.Writer) error {
	if err := seedDev(ctx, st, hasher, base, dbURL, out); err != nil {
		return err
	}
	err := st.CreateRecruiter(ctx, store.Recruiter{ID: devMember, TenantID: devTenant, Email: "member@veref.test",
		ClerkUserID: "user_member_demo", CreatedAt: time.Now().UTC()})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("creating the demo member: %w", err)
	}
	fmt.Fprintf(out, "Console: %s/app/ (development sign-in as %s, an admin, or %s, a member)\n", base, devRecruiter, devMember)
	fmt.Fprintf(out, "Workspace session for curl:\n  VEREF_SESSION=$(veref admin session-token --dev --tenant %s --recruiter %s)\n\n", devTenant, devRecruiter)
	return nil
}

// seedDev creates the demo tenant, recruiter and a test key on the first
// start, and on later starts says how to make another key.
func seedDev(ctx context.Context, st store.Store, hasher *auth.Hasher, base, dbURL string, out io.Writer) error {
	now := time.Now().UTC()
	_, err := st.GetTenant(ctx, devTenant)
	if err == nil {
		fmt.Fprintf(out, "Using the existing development data in %s (tenant %q).\n", redactURL(dbURL), devTenant)
		fmt.Fprintf(out, "The key printed on the first start still works. To make another:\n")
		fmt.Fprintf(out, "  veref admin keys create --dev --tenant %s --recruiter %s --name \"another key\" --env test\n", devTenant, devRecruiter)
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := st.CreateTenant(ctx, store.Tenant{ID: devTenant, Name: "Demo Recruiting", ClerkOrgID: "org_demo", CreatedAt: now}); err != nil {
		return fmt.Errorf("creating the demo tenant: %w", err)
	}
	if err := st.CreateRecruiter(ctx, store.Recruiter{ID: devRecruiter, TenantID: devTenant, Email: "demo@veref.test",
		ClerkUserID: "user_demo", Admin: true, CreatedAt: now}); err != nil {
		return fmt.Errorf("creating the demo recruiter: %w", err)
	}
	ks := &api.KeyService{Store: st, Hasher: hasher, Now: time.Now, MaxActive: 100}
	created, err := ks.Create(ctx, api.NewKey{TenantID: devTenant, RecruiterID: devRecruiter, Name: "dev key",
		Environment: auth.Test}, api.Actor{Kind: store.ActorOperator, ID: "veref-serve-dev"})
	if err != nil {
		return fmt.Errorf("creating the development key: %w", err)
	}
	fmt.Fprintf(out, "Created tenant %q and recruiter %q in %s, and a test key with every scope.\n", devTenant, devRecruiter, redactURL(dbURL))
	fmt.Fprintf(out, "It is shown only this once:\n\n")
	fmt.Fprintf(out, "VEREF_API_KEY=%s\n\n", created.Plaintext)
	fmt.Fprintf(out, "Try it:\n  curl -s -H \"Authorization: Bearer $VEREF_API_KEY\" %s/v1/api/me\n\n", base)
	return nil
}
