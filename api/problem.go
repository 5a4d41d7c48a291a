package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/tools"
)

// Problem is RFC 9457 problem+json with Veref's stable machine code beside
// the human title and detail.
type Problem struct {
	Type     string              `json:"type,omitempty" doc:"A URI reference for the problem type"`
	Title    string              `json:"title" doc:"A short summary of the problem"`
	Status   int                 `json:"status" doc:"The HTTP status code"`
	Code     string              `json:"code" doc:"A stable machine-readable code, e.g. SCOPE_MISSING"`
	Detail   string              `json:"detail,omitempty" doc:"What went wrong in this occurrence"`
	Hint     string              `json:"hint,omitempty" doc:"What to do about it"`
	Instance string              `json:"instance,omitempty"`
	TraceID  string              `json:"traceId,omitempty" doc:"Quote this when reporting a problem"`
	AuditID  string              `json:"auditId,omitempty"`
	Errors   []*huma.ErrorDetail `json:"errors,omitempty" doc:"The failing fields"`
}

func (p *Problem) Error() string  { return p.Code + ": " + p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes Huma send application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// statusOf maps the stable codes to HTTP statuses.
var statusOf = map[string]int{
	auth.CodeMissing:       401,
	auth.CodeInvalidFormat: 401,
	auth.CodeInvalidKey:    401,
	auth.CodeRevokedKey:    401,
	auth.CodeExpiredKey:    401,
	auth.CodeScopeMissing:  403,
	tools.CodeNotFound:     404,
	tools.CodeConflict:     409,
	tools.CodeInvalidInput: 422,
	tools.CodeUnavailable:  503,
	tools.CodeInternal:     500,
}

// codeOf is the fallback for errors Huma raises itself (validation, bad JSON).
func codeOf(status int) string {
	switch status {
	case 400, 422:
		return tools.CodeInvalidInput
	case 401:
		return auth.CodeMissing
	case 403:
		return auth.CodeScopeMissing
	case 404:
		return tools.CodeNotFound
	case 409:
		return tools.CodeConflict
	case 413:
		return "TOO_LARGE"
	case 503:
		return tools.CodeUnavailable
	default:
		if status >= 500 {
			return tools.CodeInternal
		}
		return "ERROR"
	}
}

func init() {
	// Huma's own errors (body validation on the management routes, malformed
	// JSON) use the same shape and codes as ours.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		p := &Problem{Status: status, Title: http.StatusText(status), Code: codeOf(status), Detail: msg}
		for _, e := range errs {
			var d huma.ErrorDetailer
			if errors.As(e, &d) {
				p.Errors = append(p.Errors, d.ErrorDetail())
			} else if e != nil {
				p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
			}
		}
		return p
	}
}

// problemFrom converts any error from auth or tools into a Problem.
func problemFrom(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		return &Problem{Status: ae.Status, Title: http.StatusText(ae.Status), Code: ae.Code, Detail: ae.Detail, Hint: ae.Hint}
	}
	te := tools.AsError(err)
	status, ok := statusOf[te.Code]
	if !ok {
		status = 500
	}
	p = &Problem{Status: status, Title: http.StatusText(status), Code: te.Code, Detail: te.Message, Hint: te.Hint, AuditID: te.AuditID}
	for _, fe := range te.Errors {
		p.Errors = append(p.Errors, &huma.ErrorDetail{Location: fe.Location, Message: fe.Message})
	}
	return p
}

// writeProblem is for handlers outside Huma's response path.
func writeProblem(w http.ResponseWriter, traceID string, p *Problem) {
	if p.TraceID == "" {
		p.TraceID = traceID
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
