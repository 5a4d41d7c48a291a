package api

import (
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// revokeSelf is POST /v1/api/me/revoke: the calling key revokes itself. No
// scope is needed: holding the key is enough to end it, which is what
// `veref logout` does and what anyone who finds their key leaked wants.
func (s *Server) revokeSelf(w http.ResponseWriter, r *http.Request) {
	meta := tools.RequestMetaFrom(r.Context())
	p, ok := auth.FromContext(r.Context())
	if !ok {
		writeProblem(w, meta.TraceID, problem.New(problem.AuthMissing, "no API key"))
		return
	}
	// Malformed is refused, not taken for a request to revoke: it takes no
	// query parameters and no body fields.
	if input, pb := restInput(w, r, nil, true); pb != nil || len(input) > 0 {
		if pb == nil {
			pb = problem.New(problem.InvalidInput, "this operation takes no body fields").WithField("body", "send {} or no body")
		}
		writeProblem(w, meta.TraceID, pb)
		return
	}
	ks := &KeyService{Store: s.opts.Store, Hasher: s.opts.Hasher, Now: s.now, MaxActive: s.opts.MaxActiveKeys}
	v, err := ks.Revoke(r.Context(), p.TenantID, p.KeyID, "revoked with the key itself", Actor{Kind: store.ActorAPIKey, ID: p.KeyID})
	if err != nil {
		writeProblem(w, meta.TraceID, problemFrom(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = jsonEncode(w, v)
}

func (s *Server) revokeSelfOperation() *huma.Operation {
	reg := s.api.OpenAPI().Components.Schemas
	problemRef := problemSchema(reg)
	op := &huma.Operation{
		OperationID: "revoke_me",
		Method:      http.MethodPost,
		Path:        "/v1/api/me/revoke",
		Summary:     "Revoke this key",
		Description: "Revokes the API key making the call, immediately and for good; the next request with it fails with AUTH_REVOKED_KEY. " +
			"Needs no scope. Use it when a key has leaked, or to log out of the CLI.",
		Tags:     []string{"keys"},
		Security: []map[string][]string{{"bearerAuth": {}}, {"apiKeyAuth": {}}},
		Responses: map[string]*huma.Response{
			"200": {Description: "The revoked key's metadata", Content: map[string]*huma.MediaType{
				"application/json": {Schema: reg.Schema(reflect.TypeFor[KeyView](), true, "")},
			}},
		},
	}
	for _, code := range []string{"401", "409", "500", "503"} {
		op.Responses[code] = &huma.Response{Description: problemDescriptions[code],
			Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problemRef}}}
	}
	return op
}
