package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/mail"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
	"github.com/verefwork/veref/workers"
)

// ---------------------------------------------------------------------------
// Helpers

// eachBackend runs fn against a fresh server over every store backend.
func withServer(t *testing.T, fn func(t *testing.T, e *apitest.Env)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := apitest.New(t, b.Open(t), apitest.Options{})
			e.Tenant("acme")
			fn(t, e)
		})
	}
}

// must asserts the status and returns the decoded JSON body.
func expect(t *testing.T, res apitest.Response, status int) map[string]any {
	t.Helper()
	require.EqualValues(t, status, res.Status, "body: %s", res.Body)
	return res.JSON()
}

// problem asserts an error status and code and returns the problem body.
func expectProblem(t *testing.T, res apitest.Response, status int, code string) map[string]any {
	t.Helper()
	require.EqualValues(t, status, res.Status, "body: %s", res.Body)
	require.Equal(t, code, res.Code(), "body: %s", res.Body)
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	return res.JSON()
}

// locations lists errors[].location of a problem.
func errorLocations(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok {
			loc, _ := m["location"].(string)
			out = append(out, loc)
		}
	}
	return out
}

// str digs a string out of decoded JSON: jstr(m, "referees", 0, "state").
func jstr(v any, path ...any) string {
	s, _ := jget(v, path...).(string)
	return s
}

func jget(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func idsOf(list map[string]any) []string {
	var out []string
	data, _ := list["data"].([]any)
	for _, d := range data {
		out = append(out, jstr(d, "id"))
	}
	return out
}

func refereeIn(name, email, relationship string) map[string]any {
	return map[string]any{"name": name, "email": email, "relationship": relationship}
}

// Veref's standard questions: q1..q4 are ratings, q5 and q6 text.
func refereeAnswers(ratings [4]int, strengths, growth string) map[string]any {
	var a []map[string]any
	for i, r := range ratings {
		a = append(a, map[string]any{"questionId": fmt.Sprintf("q%d", i+1), "rating": r})
	}
	a = append(a, map[string]any{"questionId": "q5", "text": strengths}, map[string]any{"questionId": "q6", "text": growth})
	return map[string]any{"answers": a}
}

// linkPath turns an absolute invitation or share URL of e into a path for e.Do.
func localPath(t *testing.T, e *apitest.Env, url string) string {
	t.Helper()
	require.True(t, strings.HasPrefix(url, e.URL+"/"), "link %q is not on the server %s", url, e.URL)
	return strings.TrimPrefix(url, e.URL)
}

// links returns the testInvitationLinks of a references_start answer by referee id.
func invitationLinks(t *testing.T, e *apitest.Env, ref map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	ls, _ := ref["testInvitationLinks"].([]any)
	for _, l := range ls {
		out[jstr(l, "refereeId")] = localPath(t, e, jstr(l, "url"))
	}
	return out
}

// answeredRequest starts a request for a new candidate with one manager
// referee who answers 5,4,4,5; it returns the request's id.
func answeredRequest(t *testing.T, e *apitest.Env, key, candidate string) string {
	t.Helper()
	ref := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
		"candidate":       map[string]any{"name": candidate},
		"referees":        []any{refereeIn("Mia Manager", "mia@example.com", "manager")},
		"sendInvitations": true,
	}), 201)
	l := invitationLinks(t, e, ref)
	require.Len(t, l, 1)
	for _, path := range l {
		expect(t, e.Do("POST", path+"/response", "", refereeAnswers([4]int{5, 4, 4, 5}, "Calm", "Delegation")), 200)
	}
	return jstr(ref, "id")
}

// traceparent returns a fresh W3C traceparent header and its trace id.
func newTraceparent() (header, traceID string) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "00-" + h[:32] + "-" + h[32:] + "-01", h[:32]
}

// allAudit reads every audit event of a tenancy.
func auditOf(t *testing.T, st store.Store, ten store.Tenancy, f store.AuditFilter) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	page := store.Page{Limit: 200}
	for {
		rows, next, err := st.ListAudit(context.Background(), ten, f, page)
		require.NoError(t, err)
		out = append(out, rows...)
		if next == "" {
			return out
		}
		page.Cursor = next
	}
}

// newEvents returns the events in after that are not in before.
func newEvents(before, after []store.AuditEvent) []store.AuditEvent {
	seen := map[string]bool{}
	for _, e := range before {
		seen[e.ID] = true
	}
	var out []store.AuditEvent
	for _, e := range after {
		if !seen[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

// restPath builds a tool's REST path with made-up or given path values.
func restPath(tool *tools.Tool, id, shareID string) string {
	p := strings.ReplaceAll(tool.HTTP.Path, "{id}", id)
	p = strings.ReplaceAll(p, "{shareId}", shareID)
	return "/v1/api" + p
}

func takesBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == http.MethodPut
}

// ---------------------------------------------------------------------------
// The whole journey, through REST and the public routes only.

func TestFullReferenceCheck(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		key := e.Key("acme", auth.Test)

		ref := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
			"candidate": map[string]any{"name": "Casey Candidate", "email": "casey@example.com", "role": "Engineer"},
			"referees": []any{
				refereeIn("Mia Manager", "mia@example.com", "manager"),
				refereeIn("Pat Peer", "pat@example.com", "peer"),
			},
			"sendInvitations": true,
		}), 201)
		refID := jstr(ref, "id")
		assert.Equal(t, "sent", jstr(ref, "status"))
		mia, pat := jstr(ref, "referees", 0, "id"), jstr(ref, "referees", 1, "id")
		assert.Equal(t, "sent", jstr(ref, "referees", 0, "state"))
		link := invitationLinks(t, e, ref)
		require.Len(t, link, 2, "one test invitation link per referee")
		require.Contains(t, link, mia)
		require.Contains(t, link, pat)

		// Referee 1 opens the link: the questions, and the request moves on.
		inv := expect(t, e.Do("GET", link[mia], "", nil), 200)
		assert.Equal(t, "Casey Candidate", jstr(inv, "candidateName"))
		assert.Equal(t, "Mia Manager", jstr(inv, "refereeName"))
		require.Len(t, jget(inv, "questions"), 6)
		assert.Equal(t, "rating", jstr(inv, "questions", 0, "kind"))
		got := expect(t, e.Do("GET", "/v1/api/references/"+refID, key, nil), 200)
		assert.Equal(t, "in_progress", jstr(got, "status"))
		assert.Equal(t, "opened", jstr(got, "referees", 0, "state"))
		assert.Equal(t, "sent", jstr(got, "referees", 1, "state"))

		rec := expect(t, e.Do("POST", link[mia]+"/response", "", refereeAnswers([4]int{5, 4, 4, 5}, "Clear thinker", "Delegation")), 200)
		assert.Equal(t, "responded", jstr(rec, "status"))

		// The link is single-use.
		expectProblem(t, e.Do("POST", link[mia]+"/response", "", refereeAnswers([4]int{1, 1, 1, 1}, "", "")), 409, string(problem.LinkUsed))
		expectProblem(t, e.Do("GET", link[mia], "", nil), 409, string(problem.LinkUsed))

		// Referee 2 declines.
		rec = expect(t, e.Do("POST", link[pat]+"/response", "", map[string]any{"decline": true, "reason": "Did not work closely"}), 200)
		assert.Equal(t, "declined", jstr(rec, "status"))

		got = expect(t, e.Do("GET", "/v1/api/references/"+refID, key, nil), 200)
		assert.Equal(t, "completed", jstr(got, "status"))
		assert.Equal(t, "responded", jstr(got, "referees", 0, "state"))
		assert.Equal(t, "declined", jstr(got, "referees", 1, "state"))
		assert.Equal(t, "Did not work closely", jstr(got, "referees", 1, "declineReason"))
		assert.Equal(t, "Clear thinker", jstr(got, "referees", 0, "answers", 4, "text"))

		// The report, against numbers worked out by hand:
		//   Mia (manager) rated 5,4,4,5 -> her average and the overall average 18/4 = 4.5
		//   response rate: 1 of 2 referees answered = 0.5
		//   each question has one rating: min = max = average, agreement not_enough_data
		//   Pat declined -> one "declined" flag; no rating <= 2 -> no low_rating flag
		rep := expect(t, e.Do("POST", "/v1/api/references/"+refID+"/reports", key, nil), 201)
		repID := jstr(rep, "id")
		content := rep["content"].(map[string]any)
		assert.Equal(t, refID, jstr(rep, "requestId"))
		assert.Equal(t, "Casey Candidate", jstr(content, "candidateName"))
		assert.Equal(t, "Engineer", jstr(content, "role"))
		assert.Equal(t, "completed", jstr(content, "requestStatus"))
		assert.Equal(t, 0.5, jget(content, "responseRate"))
		assert.Equal(t, 4.5, jget(content, "overallAverage"))
		assert.Equal(t, "not_enough_data", jstr(content, "agreement"))
		for i, want := range []float64{5, 4, 4, 5} {
			q := jget(content, "questions", i)
			assert.Equal(t, fmt.Sprintf("q%d", i+1), jstr(q, "id"))
			assert.Equal(t, want, jget(q, "average"), "q%d average", i+1)
			assert.Equal(t, want, jget(q, "min"), "q%d min", i+1)
			assert.Equal(t, want, jget(q, "max"), "q%d max", i+1)
			assert.Equal(t, 1.0, jget(q, "answers"))
			assert.Equal(t, "not_enough_data", jstr(q, "agreement"))
			assert.Nil(t, jget(q, "stdDev"))
		}
		assert.Equal(t, "Clear thinker", jstr(content, "questions", 4, "textAnswers", 0, "text"))
		assert.Equal(t, mia, jstr(content, "questions", 4, "textAnswers", 0, "refereeId"))
		assert.Equal(t, 4.5, jget(content, "referees", 0, "averageRating"))
		assert.Equal(t, 6.0, jget(content, "referees", 0, "answered"))
		assert.Equal(t, 0.0, jget(content, "referees", 1, "answered"))
		assert.Nil(t, jget(content, "referees", 1, "averageRating"))
		assert.Equal(t, []any{map[string]any{
			"kind": "declined", "refereeId": pat, "message": "Pat Peer declined to give a reference: Did not work closely",
		}}, content["flags"])

		// reports_get by references:read alone.
		readOnly := e.Key("acme", auth.Test, auth.ReferencesRead)
		assert.Equal(t, content, expect(t, e.Do("GET", "/v1/api/reports/"+repID, readOnly, nil), 200)["content"])

		// Share, view, revoke, view again.
		share := expect(t, e.Do("POST", "/v1/api/reports/"+repID+"/shares", key, map[string]any{"expiresInHours": 2}), 201)
		shareID := jstr(share, "id")
		require.NotEmpty(t, shareID)
		assert.Equal(t, repID, jstr(share, "reportId"))
		sharePath := localPath(t, e, jstr(share, "url"))
		shared := e.Do("GET", sharePath, "", nil)
		assert.Equal(t, content, expect(t, shared, 200)["content"])
		assert.Equal(t, "no-store", shared.Header.Get("Cache-Control"))
		revoked := expect(t, e.Do("DELETE", "/v1/api/reports/"+repID+"/shares/"+shareID, key, nil), 200)
		assert.Equal(t, shareID, jstr(revoked, "id"))
		assert.NotEmpty(t, jstr(revoked, "revokedAt"))
		expectProblem(t, e.Do("GET", sharePath, "", nil), 410, string(problem.LinkRevoked))

		// Valuation: queued, run by a worker, polled.
		//   weighted average: only Mia (weight 1.5) rated: 4.5 -> base (4.5-1)/4*100 = 87.5
		//   one decline: -10; ratings 5,4,4,5 have stddev 0.5 <= 1: no disagreement penalty
		//   score 77.5
		val := expect(t, e.Do("POST", "/v1/api/references/"+refID+"/valuations", key, nil), 202)
		assert.Equal(t, "queued", jstr(val, "status"))
		did, err := (&workers.ValuationWorker{Store: e.Store}).RunOnce(context.Background())
		require.NoError(t, err)
		require.True(t, did)
		val = expect(t, e.Do("GET", "/v1/api/valuations/"+jstr(val, "id"), key, nil), 200)
		assert.Equal(t, "succeeded", jstr(val, "status"))
		assert.Equal(t, 77.5, jget(val, "score"))
		assert.Equal(t, 1.0, jget(val, "attempts"))
		assert.Equal(t, 4.5, jget(val, "components", "weightedAverageRating"))
		assert.Equal(t, 10.0, jget(val, "components", "declinePenalty"))
		assert.Equal(t, 0.0, jget(val, "components", "disagreementPenalty"))
		assert.Contains(t, jstr(val, "rationale"), "Score: 77.5/100.")

		// A completed request takes no more invitations.
		expectProblem(t, e.Do("POST", "/v1/api/references/"+refID+"/invitations", key, map[string]any{}), 409, string(problem.Conflict))

		// Cancelling a request kills its links.
		ref2 := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
			"candidateId": jstr(ref, "candidateId"), "referees": []any{refereeIn("Rae Report", "rae@example.com", "direct_report")},
			"sendInvitations": true,
		}), 201)
		l2 := invitationLinks(t, e, ref2)
		require.Len(t, l2, 1)
		cancelled := expect(t, e.Do("POST", "/v1/api/references/"+jstr(ref2, "id")+"/cancel", key, map[string]any{"reason": "role filled"}), 200)
		assert.Equal(t, "cancelled", jstr(cancelled, "status"))
		for _, p := range l2 {
			expectProblem(t, e.Do("GET", p, "", nil), 410, string(problem.LinkRevoked))
			expectProblem(t, e.Do("POST", p+"/response", "", refereeAnswers([4]int{3, 3, 3, 3}, "", "")), 410, string(problem.LinkRevoked))
		}
	})
}

// ---------------------------------------------------------------------------
// Scopes

func TestScopeMatrix(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		keys := map[auth.Scope]string{}
		for _, s := range auth.AllScopes() {
			keys[s] = e.Key("acme", auth.Test, s)
		}
		allScopes := e.Key("acme", auth.Test) // no scopes means all

		for _, tool := range e.Registry.Tools() {
			t.Run(tool.Name, func(t *testing.T) {
				path := restPath(tool, "madeup_0000000000", "shr_madeup")
				var body any
				if takesBody(tool.HTTP.Method) {
					body = map[string]any{}
				}
				res := e.Do(tool.HTTP.Method, path, allScopes, body)
				assert.NotEqual(t, 403, res.Status, "a key with every scope: %s", res.Body)
				assert.NotEqual(t, 405, res.Status, "no route for %s %s", tool.HTTP.Method, path)

				for _, s := range auth.AllScopes() {
					res := e.Do(tool.HTTP.Method, path, keys[s], body)
					if len(tool.Policy) == 0 || slices.Contains(tool.Policy, s) {
						assert.NotEqual(t, 403, res.Status, "%s must be allowed with %s: %s", tool.Name, s, res.Body)
						assert.NotEqual(t, 401, res.Status, "%s: %s", tool.Name, res.Body)
						continue
					}
					p := expectProblem(t, res, 403, string(problem.ScopeMissing))
					for _, need := range tool.Policy {
						assert.Contains(t, jstr(p, "detail"), string(need), "%s refused for %s must name %s", tool.Name, s, need)
					}
				}
			})
		}

		// The only tool without a policy is whoami; every single-scope key reaches it.
		for _, tool := range e.Registry.Tools() {
			if len(tool.Policy) == 0 {
				assert.Equal(t, "whoami", tool.Name)
			}
		}
		for s, key := range keys {
			me := expect(t, e.Do("GET", "/v1/api/me", key, nil), 200)
			assert.Equal(t, []any{string(s)}, me["scopes"])
		}

		// reports:read or references:read: a real report is readable with references:read alone.
		refID := answeredRequest(t, e, allScopes, "Rita Readable")
		rep := expect(t, e.Do("POST", "/v1/api/references/"+refID+"/reports", allScopes, nil), 201)
		got := expect(t, e.Do("GET", "/v1/api/reports/"+jstr(rep, "id"), keys[auth.ReferencesRead], nil), 200)
		assert.Equal(t, jstr(rep, "id"), jstr(got, "id"))
		list := expect(t, e.Do("GET", "/v1/api/reports", keys[auth.ReferencesRead], nil), 200)
		assert.Equal(t, []string{jstr(rep, "id")}, idsOf(list))
		// …but references:read cannot generate one.
		expectProblem(t, e.Do("POST", "/v1/api/references/"+refID+"/reports", keys[auth.ReferencesRead], nil), 403, string(problem.ScopeMissing))
	})
}

// ---------------------------------------------------------------------------
// Tenancy

// tenancyRecords is one tenancy's worth of records.
type tenancyRecords struct {
	candidate, request, report, share, valuation string
}

func (f tenancyRecords) all() []string {
	return []string{f.candidate, f.request, f.report, f.share, f.valuation}
}

// seed creates a candidate, an answered request, a report with a share link
// and a valuation with key.
func seedTenancy(t *testing.T, e *apitest.Env, key string) tenancyRecords {
	t.Helper()
	var f tenancyRecords
	f.request = answeredRequest(t, e, key, "Ivy Isolated")
	got := expect(t, e.Do("GET", "/v1/api/references/"+f.request, key, nil), 200)
	f.candidate = jstr(got, "candidateId")
	f.report = jstr(expect(t, e.Do("POST", "/v1/api/references/"+f.request+"/reports", key, nil), 201), "id")
	f.share = jstr(expect(t, e.Do("POST", "/v1/api/reports/"+f.report+"/shares", key, nil), 201), "id")
	f.valuation = jstr(expect(t, e.Do("POST", "/v1/api/references/"+f.request+"/valuations", key, nil), 202), "id")
	return f
}

// normalised is a problem body with the volatile parts (trace id, the id
// asked for) replaced, so two 404s can be compared whole.
func normalisedProblem(t *testing.T, res apitest.Response, id string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(bytes.ReplaceAll(res.Body, []byte(id), []byte("<ID>")), &m), string(res.Body))
	require.NotEmpty(t, m["traceId"])
	delete(m, "traceId")
	return m
}

func TestTenantAndEnvironmentIsolation(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		e.Tenant("globex")
		acme := e.Key("acme", auth.Test)
		f := seedTenancy(t, e, acme)
		valuation := expect(t, e.Do("GET", "/v1/api/valuations/"+f.valuation, acme, nil), 200)

		// The id each id-taking tool is called with, and its body.
		idOf := map[string]string{
			"candidates_get": f.candidate, "candidates_update": f.candidate,
			"references_get": f.request, "references_send_invitations": f.request, "references_cancel": f.request,
			"reports_generate": f.request, "valuations_run": f.request,
			"reports_get": f.report, "reports_share": f.report, "reports_revoke_share": f.report,
			"valuations_get": f.valuation,
		}
		bodyOf := map[string]any{"candidates_update": map[string]any{"name": "Taken Over"}}

		outsiders := map[string]string{
			"globex test": e.Key("globex", auth.Test),
			"acme live":   e.Key("acme", auth.Live),
		}
		for who, key := range outsiders {
			t.Run(who, func(t *testing.T) {
				for _, tool := range e.Registry.Tools() {
					if !strings.Contains(tool.HTTP.Path, "{id}") {
						continue
					}
					id, ok := idOf[tool.Name]
					require.True(t, ok, "tool %s takes an id: add it to this test", tool.Name)
					var body any = bodyOf[tool.Name]
					if body == nil && takesBody(tool.HTTP.Method) {
						body = map[string]any{}
					}
					// The same call for an id that exists nowhere, of the same kind.
					missing := id[:strings.Index(id, "_")+1] + "0000000000doesnotexist0000"
					real := e.Do(tool.HTTP.Method, restPath(tool, id, f.share), key, body)
					fake := e.Do(tool.HTTP.Method, restPath(tool, missing, f.share), key, body)
					expectProblem(t, real, 404, string(problem.NotFound))
					expectProblem(t, fake, 404, string(problem.NotFound))
					assert.Equal(t, normalisedProblem(t, fake, missing), normalisedProblem(t, real, id), "%s: another tenancy's id must look missing", tool.Name)
				}

				lists := []string{
					"/v1/api/candidates",
					"/v1/api/references",
					"/v1/api/references?candidateId=" + f.candidate,
					"/v1/api/reports",
					"/v1/api/reports?requestId=" + f.request,
					"/v1/api/valuations",
					"/v1/api/valuations?requestId=" + f.request,
				}
				for _, path := range lists {
					list := expect(t, e.Do("GET", path, key, nil), 200)
					for _, id := range idsOf(list) {
						assert.NotContains(t, f.all(), id, "%s leaked %s", path, id)
					}
					assert.Empty(t, idsOf(list), path)
				}
			})
		}

		// Nothing the outsiders tried changed acme's records.
		cand := expect(t, e.Do("GET", "/v1/api/candidates/"+f.candidate, acme, nil), 200)
		assert.Equal(t, "Ivy Isolated", jstr(cand, "name"))
		ref := expect(t, e.Do("GET", "/v1/api/references/"+f.request, acme, nil), 200)
		assert.Equal(t, "completed", jstr(ref, "status"))
		rep := expect(t, e.Do("GET", "/v1/api/reports/"+f.report, acme, nil), 200)
		require.Len(t, rep["shares"], 1)
		assert.Nil(t, jget(rep, "shares", 0, "revokedAt"))
		assert.Equal(t, []string{f.report}, idsOf(expect(t, e.Do("GET", "/v1/api/reports", acme, nil), 200)))
		assert.Equal(t, []string{f.valuation}, idsOf(expect(t, e.Do("GET", "/v1/api/valuations", acme, nil), 200)))
		assert.Equal(t, valuation, expect(t, e.Do("GET", "/v1/api/valuations/"+f.valuation, acme, nil), 200))

		// Test and live of one tenant never see each other's rows.
		live := e.Key("acme", auth.Live)
		liveCand := jstr(expect(t, e.Do("POST", "/v1/api/candidates", live, map[string]any{"name": "Lou Live"}), 201), "id")
		assert.Equal(t, []string{liveCand}, idsOf(expect(t, e.Do("GET", "/v1/api/candidates", live, nil), 200)))
		assert.Equal(t, []string{f.candidate}, idsOf(expect(t, e.Do("GET", "/v1/api/candidates", acme, nil), 200)))
		expectProblem(t, e.Do("GET", "/v1/api/candidates/"+liveCand, acme, nil), 404, string(problem.NotFound))
		// A live request cannot name a test candidate, nor the reverse.
		expectProblem(t, e.Do("POST", "/v1/api/references", live, map[string]any{
			"candidateId": f.candidate, "referees": []any{refereeIn("A", "a@example.com", "peer")},
		}), 404, string(problem.NotFound))
		expectProblem(t, e.Do("POST", "/v1/api/references", acme, map[string]any{
			"candidateId": liveCand, "referees": []any{refereeIn("A", "a@example.com", "peer")},
		}), 404, string(problem.NotFound))
	})
}

// ---------------------------------------------------------------------------
// Audit

func TestMutationsAreAudited(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		key := e.Key("acme", auth.Test)
		keyID := e.Principal(key).KeyID
		ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}

		// call makes one REST call with a fresh trace id and checks the audit
		// trail grew by exactly the one event it should.
		call := func(t *testing.T, toolName, method, path string, body any, status int) map[string]any {
			t.Helper()
			tool, ok := e.Registry.Lookup(toolName)
			require.True(t, ok)
			before := auditOf(t, e.Store, ten, store.AuditFilter{})
			tp, traceID := newTraceparent()
			res := e.Do(method, path, key, body, "traceparent", tp)
			out := expect(t, res, status)
			assert.Equal(t, traceID, res.Header.Get("X-Trace-Id"))
			added := newEvents(before, auditOf(t, e.Store, ten, store.AuditFilter{}))
			require.Len(t, added, 1, "%s must write exactly one audit event", toolName)
			ev := added[0]
			assert.EqualValues(t, store.ActorAPIKey, ev.ActorKind)
			assert.Equal(t, keyID, ev.ActorID)
			assert.EqualValues(t, tools.SurfaceREST, ev.Surface)
			assert.Equal(t, toolName, ev.Action)
			assert.Equal(t, traceID, ev.TraceID)
			assert.EqualValues(t, "ok", ev.Outcome)
			assert.Equal(t, tool.Target, ev.TargetType)
			assert.NotEmpty(t, ev.TargetID)
			// The target id is a record of the target's kind.
			prefix := map[string]string{"candidate": "cand_", "reference_request": "ref_", "report": "rpt_",
				"report_share": "shr_", "valuation": "val_"}[tool.Target]
			require.NotEmpty(t, prefix, "no id prefix known for target type %q", tool.Target)
			assert.True(t, strings.HasPrefix(ev.TargetID, prefix), "%s: target %s %q", toolName, ev.TargetType, ev.TargetID)
			return out
		}

		covered := map[string]bool{}
		step := func(name, method, path string, body any, status int) map[string]any {
			covered[name] = true
			var out map[string]any
			t.Run(name, func(t *testing.T) { out = call(t, name, method, path, body, status) })
			require.NotNil(t, out, "%s failed; later steps depend on it", name)
			return out
		}

		cand := step("candidates_create", "POST", "/v1/api/candidates", map[string]any{"name": "Ann Audit"}, 201)
		candID := jstr(cand, "id")
		step("candidates_update", "PATCH", "/v1/api/candidates/"+candID, map[string]any{"role": "Auditor"}, 200)
		ref := step("references_start", "POST", "/v1/api/references", map[string]any{
			"candidateId": candID, "referees": []any{refereeIn("Mia Manager", "mia@example.com", "manager")},
		}, 201)
		refID := jstr(ref, "id")
		assert.Equal(t, "draft", jstr(ref, "status"))
		sent := step("references_send_invitations", "POST", "/v1/api/references/"+refID+"/invitations", map[string]any{}, 200)
		for _, p := range invitationLinks(t, e, sent) {
			expect(t, e.Do("POST", p+"/response", "", refereeAnswers([4]int{4, 4, 4, 4}, "", "")), 200)
		}
		rep := step("reports_generate", "POST", "/v1/api/references/"+refID+"/reports", nil, 201)
		share := step("reports_share", "POST", "/v1/api/reports/"+jstr(rep, "id")+"/shares", map[string]any{}, 201)
		step("reports_revoke_share", "DELETE", "/v1/api/reports/"+jstr(rep, "id")+"/shares/"+jstr(share, "id"), nil, 200)
		step("valuations_run", "POST", "/v1/api/references/"+refID+"/valuations", nil, 202)
		other := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
			"candidateId": candID, "referees": []any{refereeIn("Pat Peer", "pat@example.com", "peer")},
		}), 201)
		step("references_cancel", "POST", "/v1/api/references/"+jstr(other, "id")+"/cancel", map[string]any{}, 200)

		for _, tool := range e.Registry.Tools() {
			if !tool.ReadOnly {
				assert.True(t, covered[tool.Name], "mutation %s is not exercised by this test", tool.Name)
			}
		}

		t.Run("reads are not audited", func(t *testing.T) {
			before := auditOf(t, e.Store, ten, store.AuditFilter{})
			n := 0
			for _, tool := range e.Registry.Tools() {
				if !tool.ReadOnly {
					continue
				}
				id := map[string]string{"candidate": candID, "reference_request": refID, "report": jstr(rep, "id")}[tool.Target]
				if strings.Contains(tool.HTTP.Path, "{id}") && id == "" {
					id = "madeup_1"
				}
				res := e.Do(tool.HTTP.Method, restPath(tool, id, ""), key, nil)
				assert.Less(t, res.Status, 500, "%s: %s", tool.Name, res.Body)
				n++
			}
			assert.GreaterOrEqual(t, n, 9)
			assert.Empty(t, newEvents(before, auditOf(t, e.Store, ten, store.AuditFilter{})))
		})

		t.Run("failed mutations leave nothing", func(t *testing.T) {
			before := auditOf(t, e.Store, ten, store.AuditFilter{})
			p := expectProblem(t, e.Do("POST", "/v1/api/references", key, map[string]any{
				"candidate": map[string]any{"name": "Half Written", "email": "half@example.com"},
				"referees": []any{
					refereeIn("Good Referee", "good@example.com", "peer"),
					refereeIn("Bad Referee", "not-an-email", "peer"),
				},
				"sendInvitations": true,
			}), 422, string(problem.InvalidInput))
			assert.Contains(t, errorLocations(p), "body.referees[1].email")
			assert.Empty(t, newEvents(before, auditOf(t, e.Store, ten, store.AuditFilter{})))
			// The inline candidate was rolled back with the request.
			list := expect(t, e.Do("GET", "/v1/api/candidates?q=half", key, nil), 200)
			assert.Empty(t, idsOf(list))
			assert.Len(t, idsOf(expect(t, e.Do("GET", "/v1/api/references", key, nil), 200)), 2)

			// A 409 and a 404 write nothing either.
			expectProblem(t, e.Do("POST", "/v1/api/references/"+refID+"/invitations", key, map[string]any{}), 409, string(problem.Conflict))
			expectProblem(t, e.Do("PATCH", "/v1/api/candidates/cand_missing", key, map[string]any{"name": "X"}), 404, string(problem.NotFound))
			assert.Empty(t, newEvents(before, auditOf(t, e.Store, ten, store.AuditFilter{})))
		})
	})
}

// ---------------------------------------------------------------------------
// Idempotency

// post is a goroutine-safe POST (no testing.T calls).
func postIdempotent(url, key, idem string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

func TestIdempotency(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		key := e.Key("acme", auth.Test)
		ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}
		body := map[string]any{"name": "Ida Idempotent", "email": "ida@example.com"}

		first := e.Do("POST", "/v1/api/candidates", key, body, "Idempotency-Key", "create-ida-1")
		id := jstr(expect(t, first, 201), "id")
		assert.Empty(t, first.Header.Get("Idempotent-Replayed"))
		// Same body, keys in another order and spacing: still the same request.
		second := e.Do("POST", "/v1/api/candidates", key, `{ "email": "ida@example.com",  "name": "Ida Idempotent" }`,
			"Idempotency-Key", "create-ida-1")
		assert.Equal(t, id, jstr(expect(t, second, 201), "id"))
		assert.Equal(t, "true", second.Header.Get("Idempotent-Replayed"))
		assert.JSONEq(t, string(first.Body), string(second.Body))

		assert.Equal(t, []string{id}, idsOf(expect(t, e.Do("GET", "/v1/api/candidates", key, nil), 200)))
		assert.Len(t, auditOf(t, e.Store, ten, store.AuditFilter{Action: "candidates_create"}), 1)

		p := expectProblem(t, e.Do("POST", "/v1/api/candidates", key, map[string]any{"name": "Someone Else"},
			"Idempotency-Key", "create-ida-1"), 409, string(problem.Conflict))
		assert.Contains(t, jstr(p, "detail"), "Idempotency-Key")
		// The same key on another operation is a different request too.
		expectProblem(t, e.Do("POST", "/v1/api/references", key, map[string]any{
			"candidateId": id, "referees": []any{refereeIn("R", "r@example.com", "peer")},
		}, "Idempotency-Key", "create-ida-1"), 409, string(problem.Conflict))
		assert.Equal(t, []string{id}, idsOf(expect(t, e.Do("GET", "/v1/api/candidates", key, nil), 200)))

		t.Run("concurrent retries", func(t *testing.T) {
			raw, _ := json.Marshal(map[string]any{"name": "Connie Current"})
			type result struct {
				status   int
				replayed string
				id       string
				err      error
			}
			results := make([]result, 10)
			var wg sync.WaitGroup
			for i := range results {
				wg.Go(func() {
					status, h, b, err := postIdempotent(e.URL+"/v1/api/candidates", key, "create-connie", raw)
					var out struct{ ID string }
					if err == nil {
						err = json.Unmarshal(b, &out)
					}
					if err == nil && status != 201 {
						err = fmt.Errorf("status %d: %s", status, b)
					}
					results[i] = result{status, h.Get("Idempotent-Replayed"), out.ID, err}
				})
			}
			wg.Wait()
			replayed := 0
			for i, r := range results {
				require.NoError(t, r.err, "request %d", i)
				assert.Equal(t, results[0].id, r.id, "request %d", i)
				if r.replayed == "true" {
					replayed++
				}
			}
			assert.Equal(t, 9, replayed, "all but the first are replays")
			list := expect(t, e.Do("GET", "/v1/api/candidates?q=connie", key, nil), 200)
			assert.Equal(t, []string{results[0].id}, idsOf(list))
			assert.Len(t, auditOf(t, e.Store, ten, store.AuditFilter{Action: "candidates_create"}), 2)
		})
	})
}

// ---------------------------------------------------------------------------
// Validation

func TestValidationErrors(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		key := e.Key("acme", auth.Test)
		tenReferees := make([]any, 11)
		for i := range tenReferees {
			tenReferees[i] = refereeIn(fmt.Sprintf("R%d", i), fmt.Sprintf("r%d@example.com", i), "peer")
		}
		peer := []any{refereeIn("Pat Peer", "pat@example.com", "peer")}
		cand := jstr(expect(t, e.Do("POST", "/v1/api/candidates", key, map[string]any{"name": "Val Id"}), 201), "id")

		cases := []struct {
			name, method, path string
			body               any
			location           string // query parameters are located in the query, as REST callers send them
		}{
			{"missing name", "POST", "/v1/api/candidates", map[string]any{"email": "a@example.com"}, "body.name"},
			{"blank name", "POST", "/v1/api/candidates", map[string]any{"name": "   "}, "body.name"},
			{"bad email", "POST", "/v1/api/candidates", map[string]any{"name": "A", "email": "not an email"}, "body.email"},
			{"bad email on update", "PATCH", "/v1/api/candidates/" + cand, map[string]any{"email": "nope@"}, "body.email"},
			{"eleven referees", "POST", "/v1/api/references", map[string]any{"candidateId": cand, "referees": tenReferees}, "body.referees"},
			{"no referees", "POST", "/v1/api/references", map[string]any{"candidateId": cand, "referees": []any{}}, "body.referees"},
			{"unknown relationship", "POST", "/v1/api/references", map[string]any{"candidateId": cand,
				"referees": []any{refereeIn("A", "a@example.com", "cousin")}}, "body.referees[0].relationship"},
			{"bad referee email", "POST", "/v1/api/references", map[string]any{"candidateId": cand,
				"referees": []any{refereeIn("A", "a@@example", "peer")}}, "body.referees[0].email"},
			{"unknown body field", "POST", "/v1/api/candidates", map[string]any{"name": "A", "nickname": "B"}, "body.nickname"},
			{"candidateId and candidate", "POST", "/v1/api/references", map[string]any{"candidateId": cand,
				"candidate": map[string]any{"name": "B"}, "referees": peer}, "body.candidateId"},
			{"neither candidateId nor candidate", "POST", "/v1/api/references", map[string]any{"referees": peer}, "body.candidateId"},
			{"inline candidate without name", "POST", "/v1/api/references", map[string]any{
				"candidate": map[string]any{"email": "b@example.com"}, "referees": peer}, "body.candidate.name"},
			{"dueDate in the past", "POST", "/v1/api/references", map[string]any{"candidateId": cand, "referees": peer,
				"dueDate": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "body.dueDate"},
			{"limit zero", "GET", "/v1/api/candidates?limit=0", nil, "query.limit"},
			{"limit too big", "GET", "/v1/api/references?limit=201", nil, "query.limit"},
			{"limit not a number", "GET", "/v1/api/candidates?limit=ten", nil, "query.limit"},
			{"bad cursor", "GET", "/v1/api/candidates?cursor=!!notacursor!!", nil, "query.cursor"},
			{"cursor of garbage base64", "GET", "/v1/api/reports?cursor=Zm9v", nil, "query.cursor"},
			{"unknown status filter", "GET", "/v1/api/references?status=lost", nil, "query.status"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := expectProblem(t, e.Do(c.method, c.path, key, c.body), 422, string(problem.InvalidInput))
				locs := errorLocations(p)
				require.NotEmpty(t, locs, "errors[] must locate the field: %v", p)
				assert.Contains(t, locs, c.location)
			})
		}
		// None of the refused calls created anything.
		assert.Equal(t, []string{cand}, idsOf(expect(t, e.Do("GET", "/v1/api/candidates", key, nil), 200)))
		assert.Empty(t, idsOf(expect(t, e.Do("GET", "/v1/api/references", key, nil), 200)))

		t.Run("referee answers", func(t *testing.T) {
			ref := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
				"candidateId": cand, "referees": peer, "sendInvitations": true}), 201)
			var link string
			for _, l := range invitationLinks(t, e, ref) {
				link = l + "/response"
			}
			bad := []struct {
				name     string
				body     any
				location string
			}{
				{"rating 6", refereeAnswers([4]int{5, 6, 4, 4}, "", ""), "body.answers[1].rating"},
				{"rating 0", refereeAnswers([4]int{5, 0, 4, 4}, "", ""), "body.answers[1].rating"},
				{"missing rating question", map[string]any{"answers": []any{
					map[string]any{"questionId": "q1", "rating": 4}, map[string]any{"questionId": "q2", "rating": 4},
					map[string]any{"questionId": "q3", "rating": 4}}}, "body.answers"},
				{"unknown question", map[string]any{"answers": []any{map[string]any{"questionId": "q99", "rating": 4}}}, "body.answers[0].questionId"},
				{"answers and decline", map[string]any{"decline": true, "answers": []any{map[string]any{"questionId": "q1", "rating": 4}}}, "body.answers"},
			}
			for _, b := range bad {
				p := expectProblem(t, e.Do("POST", link, "", b.body), 422, string(problem.InvalidInput))
				assert.Contains(t, errorLocations(p), b.location, b.name)
			}
			// A refused answer does not spend the link.
			expect(t, e.Do("POST", link, "", refereeAnswers([4]int{3, 3, 3, 3}, "", "")), 200)
		})
	})
}

// ---------------------------------------------------------------------------
// Pagination

func TestPagination(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		key := e.Key("acme", auth.Test)
		var created []string
		for i := range 7 {
			// Back to back on purpose: ids made within one millisecond
			// still sort by creation (see TestIDsOrderWithinAMillisecond).
			res := expect(t, e.Do("POST", "/v1/api/candidates", key, map[string]any{"name": fmt.Sprintf("Page %d", i)}), 201)
			created = append(created, jstr(res, "id"))
		}
		slices.Reverse(created) // newest first

		var pages [][]string
		cursor := ""
		for range 10 {
			path := "/v1/api/candidates?limit=3"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			page := expect(t, e.Do("GET", path, key, nil), 200)
			pages = append(pages, idsOf(page))
			next, present := page["nextCursor"]
			if !present {
				break
			}
			cursor, _ = next.(string)
			require.NotEmpty(t, cursor)
		}
		require.Len(t, pages, 3)
		assert.Len(t, pages[0], 3)
		assert.Len(t, pages[1], 3)
		assert.Len(t, pages[2], 1)
		assert.Equal(t, created, slices.Concat(pages...), "every candidate once, newest first")

		// A filtered list pages the same way.
		page := expect(t, e.Do("GET", "/v1/api/candidates?limit=2&q=page", key, nil), 200)
		assert.Equal(t, created[:2], idsOf(page))
		assert.NotEmpty(t, page["nextCursor"])
	})
}

// TestIDsOrderWithinAMillisecond: lists are "newest first" by id, so two
// records made in one millisecond must still sort by creation; the sequence
// after the time part is what makes them.
func TestIDsOrderWithinAMillisecond(t *testing.T) {
	out := 0
	for range 200 {
		a, b := store.NewID("cand"), store.NewID("cand")
		if a >= b {
			out++
		}
	}
	assert.Zero(t, out, "of 200 pairs of ids made one after the other, %d sort the older first-listed (newer first expected)", out)
}

// ---------------------------------------------------------------------------
// The valuation queue

func TestValuationQueueSharedByTwoInstances(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			var stores []store.Store
			if b.Name == "postgres" {
				url := storetest.PostgresURL(t)
				for range 2 {
					st, err := postgres.Open(ctx, url)
					require.NoError(t, err)
					t.Cleanup(func() { _ = st.Close() })
					stores = append(stores, st)
				}
				require.NoError(t, stores[0].Migrate(ctx))
			} else {
				st := b.Open(t)
				stores = []store.Store{st, st}
			}
			servers := []*apitest.Env{apitest.New(t, stores[0], apitest.Options{}), apitest.New(t, stores[1], apitest.Options{})}
			servers[0].Tenant("acme")
			keys := []string{servers[0].Key("acme", auth.Test), servers[1].Key("acme", auth.Test)}

			// Three answered requests, then 30 runs queued through both servers.
			var requests []string
			for i := range 3 {
				requests = append(requests, answeredRequest(t, servers[i%2], keys[i%2], fmt.Sprintf("Queue %d", i)))
			}
			var queued []string
			for i := range 30 {
				s := i % 2
				v := expect(t, servers[s].Do("POST", "/v1/api/references/"+requests[i%3]+"/valuations", keys[s], nil), 202)
				queued = append(queued, jstr(v, "id"))
			}

			// Four workers, two per store, until the queue is empty.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			ran := make([]int, 4)
			for w := range 4 {
				worker := &workers.ValuationWorker{Store: stores[w%2], ID: fmt.Sprintf("worker-%d", w)}
				wg.Go(func() {
					for range 100 { // bounded: 30 runs among 4 workers
						did, err := worker.RunOnce(ctx)
						if err != nil {
							errs[w] = err
							return
						}
						if !did {
							return
						}
						ran[w]++
					}
				})
			}
			wg.Wait()
			for w, err := range errs {
				require.NoError(t, err, "worker %d", w)
			}
			assert.Equal(t, 30, ran[0]+ran[1]+ran[2]+ran[3], "runs done per worker: %v", ran)

			ten := store.Tenancy{TenantID: "acme", Environment: auth.Test}
			for _, id := range queued {
				v, err := stores[0].GetValuation(ctx, ten, id)
				require.NoError(t, err)
				assert.EqualValues(t, store.ValuationSucceeded, v.Status, id)
				assert.Equal(t, 1, v.Attempts, "%s was run more than once", id)
				require.NotNil(t, v.Score)
				assert.Equal(t, 87.5, *v.Score) // 5,4,4,5 from a manager: (4.5-1)/4*100
				evs := auditOf(t, stores[1], ten, store.AuditFilter{Action: "valuation.succeeded", TargetID: id})
				assert.Len(t, evs, 1, "audit events for %s", id)
			}
			assert.Len(t, auditOf(t, stores[0], ten, store.AuditFilter{Action: "valuation.succeeded"}), 30)

			t.Run("expired lease is taken over", func(t *testing.T) {
				id := jstr(expect(t, servers[0].Do("POST", "/v1/api/references/"+requests[0]+"/valuations", keys[0], nil), 202), "id")
				now := time.Now().UTC()
				stale, err := stores[1].ClaimValuation(ctx, now, now.Add(-time.Second))
				require.NoError(t, err)
				require.Equal(t, id, stale.ID)
				require.Equal(t, 1, stale.Attempts)

				did, err := (&workers.ValuationWorker{Store: stores[0], ID: "rescuer"}).RunOnce(ctx)
				require.NoError(t, err)
				require.True(t, did, "the run with a lapsed lease must be claimed again")
				v, err := stores[0].GetValuation(ctx, ten, id)
				require.NoError(t, err)
				assert.EqualValues(t, store.ValuationSucceeded, v.Status)
				assert.Equal(t, 2, v.Attempts)

				// The first claimer wakes up and tries to finish: refused.
				score := 1.0
				stale.Status, stale.Score, stale.LeaseUntil = store.ValuationSucceeded, &score, nil
				finished := time.Now().UTC()
				stale.FinishedAt = &finished
				assert.ErrorIs(t, stores[1].FinishValuation(ctx, stale), store.ErrConflict)
				v, err = stores[0].GetValuation(ctx, ten, id)
				require.NoError(t, err)
				assert.Equal(t, 87.5, *v.Score, "the stale claimer must not overwrite the result")

				did, err = (&workers.ValuationWorker{Store: stores[1]}).RunOnce(ctx)
				require.NoError(t, err)
				assert.False(t, did, "nothing left in the queue")
			})
		})
	}
}

// ---------------------------------------------------------------------------
// The outbox

// sentMail is one message a recordingMailer was asked to send.
type sentMail struct{ To, Subject, Body string }

// recordingMailer stands in for the SMTP relay.
type recordingMailer struct {
	mu   sync.Mutex
	sent []sentMail
}

func (m *recordingMailer) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, sentMail{msg.To, msg.Subject, msg.Body})
	return nil
}

func (m *recordingMailer) recipients() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.sent {
		out = append(out, s.To)
	}
	sort.Strings(out)
	return out
}

func TestOutboxTestEnvironmentNeverSendsRealMail(t *testing.T) {
	withServer(t, func(t *testing.T, e *apitest.Env) {
		start := func(key, candidate string, emails ...string) map[string]any {
			var refs []any
			for _, em := range emails {
				refs = append(refs, refereeIn("Ref "+em, em, "peer"))
			}
			return expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
				"candidate": map[string]any{"name": candidate, "role": "Chef"}, "referees": refs, "sendInvitations": true,
			}), 201)
		}
		liveRef := start(e.Key("acme", auth.Live), "Liv Live", "live1@example.com", "live2@example.com")
		assert.Nil(t, liveRef["testInvitationLinks"], "live keys never see invitation links")
		testRef := start(e.Key("acme", auth.Test), "Tess Test", "test1@example.com")
		testLinks := invitationLinks(t, e, testRef)
		require.Len(t, testLinks, 1)

		live, test := &recordingMailer{}, &recordingMailer{}
		w := &workers.OutboxWorker{Store: e.Store, Live: live, Test: test}
		n, err := w.RunOnce(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		assert.Equal(t, []string{"live1@example.com", "live2@example.com"}, live.recipients())
		assert.Equal(t, []string{"test1@example.com"}, test.recipients())
		for _, m := range live.sent {
			assert.Equal(t, "Reference request for Liv Live", m.Subject)
			assert.Contains(t, m.Body, e.URL+"/v1/referee/")
			assert.Contains(t, m.Body, "for the role of Chef")
		}
		// The test e-mail carries the same link the API returned.
		for _, p := range testLinks {
			assert.Contains(t, test.sent[0].Body, e.URL+p)
		}

		// Sent messages are marked and not sent again.
		n, err = w.RunOnce(context.Background())
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Len(t, live.sent, 2)
		assert.Len(t, test.sent, 1)

		// A resend queues one new message, to the test mailer again.
		expect(t, e.Do("POST", "/v1/api/references/"+jstr(testRef, "id")+"/invitations", e.Key("acme", auth.Test), map[string]any{}), 200)
		n, err = w.RunOnce(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Len(t, live.sent, 2)
		assert.Equal(t, []string{"test1@example.com", "test1@example.com"}, test.recipients())
	})
}
