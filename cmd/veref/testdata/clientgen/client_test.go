// Package clientgen exercises a client generated from Veref's OpenAPI
// document by ogen, a generator nobody here wrote, against a real server.
// TestGeneratedGoClient in cmd/veref generates ./client and runs this test
// with a `veref serve --dev`'s URL, its printed key and tenant in the
// environment.
package clientgen

import (
	"context"
	"os"
	"testing"

	"veref.test/clientgen/client"
)

type key string

func (k key) ApiKeyAuth(context.Context, client.OperationName) (client.ApiKeyAuth, error) {
	return client.ApiKeyAuth{APIKey: string(k)}, nil
}

func (k key) BearerAuth(context.Context, client.OperationName) (client.BearerAuth, error) {
	return client.BearerAuth{Token: string(k)}, nil
}

func TestGeneratedClientAgainstVeref(t *testing.T) {
	url, k, tenant := os.Getenv("VEREF_CLIENTGEN_URL"), os.Getenv("VEREF_CLIENTGEN_KEY"), os.Getenv("VEREF_CLIENTGEN_TENANT")
	if url == "" || k == "" || tenant == "" {
		t.Skip("run through TestGeneratedGoClient in cmd/veref, which starts a server and generates ./client")
	}
	ctx := context.Background()
	c, err := client.NewClient(url, key(k))
	if err != nil {
		t.Fatal(err)
	}

	me, err := c.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wh, ok := me.(*client.WhoamiHeaders)
	if !ok || wh.Response.TenantId != tenant || wh.Response.Environment != "test" {
		t.Fatalf("whoami: %#v", me)
	}
	if p, ok := wh.RateLimitPolicy.Get(); !ok || p != `"default";q=600;w=60` {
		t.Fatalf("whoami: RateLimit-Policy %q", p)
	}

	started, err := c.ReferencesStart(ctx, &client.ReferencesStartRequest{
		Candidate: client.NewOptCandidateFields(client.CandidateFields{Name: "Dana Scully", Email: client.NewOptString("dana@example.com")}),
		Referees: []client.RefereeInput{
			{Name: "Walter Skinner", Email: "walter@example.com", Relationship: client.RefereeInputRelationshipManager},
		},
		SendInvitations: client.NewOptBool(true),
	}, client.ReferencesStartParams{IdempotencyKey: client.NewOptString("clientgen-1")})
	if err != nil {
		t.Fatal(err)
	}
	rh, ok := started.(*client.ReferenceHeaders)
	if !ok {
		t.Fatalf("references_start: %#v", started)
	}
	ref := rh.Response
	if ref.Status != "sent" || len(ref.Referees) != 1 {
		t.Fatalf("references_start: %#v", started)
	}
	if links := ref.TestInvitationLinks; len(links) != 1 {
		t.Fatalf("a test key gets the invitation links: %#v", ref.TestInvitationLinks)
	}

	got, err := c.ReferencesGet(ctx, client.ReferencesGetParams{ID: ref.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := got.(*client.ReferenceRequestHeaders); !ok || r.Response.ID != ref.ID || r.Response.Referees[0].State != "sent" {
		t.Fatalf("references_get: %#v", got)
	}

	// Problems decode into the documented type with their stable code.
	missing, err := c.CandidatesGet(ctx, client.CandidatesGetParams{ID: "cand_missing"})
	if err != nil {
		t.Fatal(err)
	}
	if nf, ok := missing.(*client.CandidatesGetNotFound); !ok || nf.Response.Code != "NOT_FOUND" {
		t.Fatalf("candidates_get of a missing id: %#v", missing)
	}
}
