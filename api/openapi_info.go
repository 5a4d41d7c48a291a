package api

import (
	"strings"
	"unicode"

	"github.com/danielgtaylor/huma/v2"
)

// integrationTags describe the resources of the /v1/api document, one tag
// per resource as tagOf names them.
var integrationTags = []*huma.Tag{
	{Name: "identity", Description: "Who the key belongs to: tenant, environment, recruiter and scopes."},
	{Name: "keys", Description: "The calling key itself: revoke it."},
	{Name: "candidates", Description: "The people references are checked for."},
	{Name: "references", Description: "Reference checks: the referees, their invitations and answers."},
	{Name: "reports", Description: "Reports aggregated from a reference check's answers, and read-only share links to them."},
	{Name: "valuations", Description: "Scores computed from a reference check, run asynchronously."},
	{Name: "agent", Description: "Ask Veref: a model that runs the operations this key allows, with approval before outward or destructive calls."},
}

// describeDocument sets what every Veref OpenAPI document says about
// itself: where it is served, who answers for it, its licence and tags.
func describeDocument(doc *huma.OpenAPI, tags []*huma.Tag) {
	doc.Servers = []*huma.Server{
		{URL: "https://api.veref.work", Description: "Production"},
		{URL: "http://127.0.0.1:8080", Description: "A local `veref serve --dev`"},
	}
	// No LICENSE file grants anything: the API and this code are proprietary,
	// used under Veref's terms. Contact is where its documentation (and the
	// problem type URIs) live.
	doc.Info.Contact = &huma.Contact{Name: "Veref API support", URL: "https://docs.veref.work", Email: "support@veref.work"}
	doc.Info.License = &huma.License{Name: "Proprietary", URL: "https://veref.work/terms"}
	doc.Tags = tags
}

// workspaceTags describe the resources of the /v1/tenants document.
var workspaceTags = []*huma.Tag{
	{Name: "API keys", Description: "The tenant's API keys: create, list, limits, usage, suspend, resume, roll and revoke."},
	{Name: "Audit", Description: "The tenant's audit trail."},
	{Name: "CLI login", Description: "Approving or denying a `veref login` from the console."},
}

// finishWorkspaceDoc completes the workspace document once every route is
// registered: the document's own description, a tag per resource, a summary
// and the problem responses for operations registered without them.
func finishWorkspaceDoc(doc *huma.OpenAPI) {
	describeDocument(doc, workspaceTags)
	addRequestExamples(doc)
	for path, item := range doc.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			if len(op.Tags) == 0 {
				op.Tags = []string{workspaceTag(path)}
			}
			if op.Summary == "" {
				op.Summary = sentence(op.OperationID)
			}
			if op.Description == "" {
				op.Description = op.Summary + "."
			}
			for _, code := range []string{"401", "403", "404", "422", "500", "503"} {
				if _, ok := op.Responses[code]; !ok {
					op.Responses[code] = &huma.Response{Description: workspaceProblems[code],
						Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problemSchema(doc.Components.Schemas)}}}
				}
			}
		}
	}
}

var workspaceProblems = map[string]string{
	"401": "AUTH_MISSING or AUTH_INVALID_SESSION: no session, or one that was refused",
	"403": "FORBIDDEN or RECRUITER_UNKNOWN: the session may not act here",
	"404": "NOT_FOUND: the tenant or the key is not one this session can see",
	"422": "INVALID_INPUT, naming the failing field",
	"500": "INTERNAL",
	"503": "UNAVAILABLE: storage or the identity provider is not answering; retry",
}

func workspaceTag(path string) string {
	switch {
	case strings.Contains(path, "/audit-events"):
		return "Audit"
	case strings.Contains(path, "/cli-sessions"):
		return "CLI login"
	}
	return "API keys"
}

// sentence turns an operation id (listApiKeys) into a summary (List api keys).
func sentence(id string) string {
	var b strings.Builder
	for i, r := range id {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
			r = unicode.ToLower(r)
		}
		if i == 0 {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
	}
	return strings.ReplaceAll(b.String(), "api ", "API ")
}

// requestExamples are shown with each request body, in the reference and in
// generated clients' documentation; the linters check them against the
// schemas (Redocly's no-invalid-media-type-examples).
var requestExamples = map[string]any{
	"candidates_create": map[string]any{"name": "Dana Scully", "email": "dana@example.com", "role": "Staff Engineer", "externalRef": "ats-4711"},
	"candidates_update": map[string]any{"role": "Principal Engineer"},
	"references_start": map[string]any{
		"candidate": map[string]any{"name": "Dana Scully", "email": "dana@example.com", "role": "Staff Engineer"},
		"referees": []any{
			map[string]any{"name": "Walter Skinner", "email": "walter@example.com", "relationship": "manager"},
			map[string]any{"name": "Fox Mulder", "email": "fox@example.com", "relationship": "peer"},
		},
		"sendInvitations": true,
	},
	"references_cancel":           map[string]any{"reason": "The candidate withdrew"},
	"references_send_invitations": map[string]any{"refereeIds": []any{"rfe_2b9x"}},
	"reports_share":               map[string]any{"expiresInHours": 48},
	"createApiKey": map[string]any{"name": "Zapier sync", "environment": "live", "scopes": []any{"references:read"},
		"expiresAt": "2027-01-01T00:00:00Z"},
	"revokeApiKey":       map[string]any{"note": "leaked in a CI log"},
	"updateApiKeyLimits": map[string]any{"allowedIps": []any{"203.0.113.0/24"}, "agentDailyTokens": 200000},
	"rollApiKey":         map[string]any{"graceHours": 24},
	"suspendApiKey":      map[string]any{"note": "Investigating unusual traffic"},
	"ask_veref":          map[string]any{"message": "Which of Dana's referees have not answered yet? Resend their invitations.", "autoApprove": []any{"references_send_invitations"}},
}

// addRequestExamples puts requestExamples on the operations' JSON bodies.
func addRequestExamples(doc *huma.OpenAPI) {
	for _, item := range doc.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil || op.RequestBody == nil {
				continue
			}
			if mt := op.RequestBody.Content["application/json"]; mt != nil && mt.Example == nil {
				mt.Example = requestExamples[op.OperationID]
			}
		}
	}
}
