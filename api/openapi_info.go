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
	doc.Info.Contact = &huma.Contact{Name: "Veref support", URL: "https://veref.work", Email: "support@veref.work"}
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
