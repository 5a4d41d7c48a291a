package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/tools"
)

// PublicRoutes serves referee invitations and share links: outside /v1/api
// and its spec, authenticated by the single-use token in the path.
func PublicRoutes(p *tools.Public, log zerolog.Logger, repeats *logdedup.Deduper) map[string]http.Handler {
	publicJSON := func(h func(r *http.Request) (any, error)) http.Handler { return publicHandler(log, repeats, h) }
	return map[string]http.Handler{
		"GET /v1/referee/{token}": publicJSON(func(r *http.Request) (any, error) {
			return p.OpenInvitation(r.Context(), r.PathValue("token"))
		}),
		"POST /v1/referee/{token}/response": publicJSON(func(r *http.Request) (any, error) {
			body, pb := readJSONBody(nil, r)
			if pb != nil {
				return nil, pb
			}
			return p.SubmitResponse(r.Context(), r.PathValue("token"), body)
		}),
		"GET /v1/shares/{token}": publicJSON(func(r *http.Request) (any, error) {
			return p.ViewShare(r.Context(), r.PathValue("token"))
		}),
	}
}

func publicHandler(log zerolog.Logger, repeats *logdedup.Deduper, h func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		// Tokens are in the path: keep them out of caches and referrers.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		traceID := requestTraceID(r)
		w.Header().Set("X-Trace-Id", traceID)
		out, err := h(r)
		if err != nil {
			pb := problemFrom(err)
			if pb.Status >= 500 {
				repeats.Error(log, "public route failed", err).AnErr("cause", errors.Unwrap(err)).
					Str("trace_id", traceID).Str("route", r.Pattern).Send()
			}
			writeProblem(w, traceID, pb)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}
