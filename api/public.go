package api

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/verefwork/veref/tools"
)

func init() {
	statusOf[tools.CodeLinkInvalid] = http.StatusNotFound
	statusOf[tools.CodeLinkUsed] = http.StatusConflict
	statusOf[tools.CodeLinkExpired] = http.StatusGone
	statusOf[tools.CodeLinkRevoked] = http.StatusGone
}

// PublicRoutes serves referee invitations and share links: outside /v1/api
// and its spec, authenticated by the single-use token in the path.
func PublicRoutes(p *tools.Public) map[string]http.Handler {
	return map[string]http.Handler{
		"GET /v1/referee/{token}": publicJSON(func(r *http.Request) (any, error) {
			return p.OpenInvitation(r.Context(), r.PathValue("token"))
		}),
		"POST /v1/referee/{token}/response": publicJSON(func(r *http.Request) (any, error) {
			var in tools.ResponseInput
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
			if err == nil {
				err = json.Unmarshal(body, &in)
			}
			if err != nil {
				return nil, &tools.Error{Code: tools.CodeInvalidInput, Message: "the body must be a JSON object with answers, or decline: true"}
			}
			return p.SubmitResponse(r.Context(), r.PathValue("token"), in)
		}),
		"GET /v1/shares/{token}": publicJSON(func(r *http.Request) (any, error) {
			return p.ViewShare(r.Context(), r.PathValue("token"))
		}),
	}
}

func publicJSON(h func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Tokens are in the path: keep them out of caches and referrers.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		traceID := traceIDFrom(r.Header.Get("traceparent"))
		w.Header().Set("X-Trace-Id", traceID)
		out, err := h(r)
		if err != nil {
			writeProblem(w, traceID, problemFrom(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}
