package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Problem is an RFC 9457 problem document with Veref's stable code beside
// the human title and detail. It is also an error, so operations can
// return it as one.
type Problem struct {
	Type     string `json:"type" doc:"A stable URI per code; it documents the code"`
	Title    string `json:"title" doc:"A short summary of the problem"`
	Status   int    `json:"status" doc:"The HTTP status code"`
	Code     Code   `json:"code" doc:"A stable machine-readable code, e.g. SCOPE_MISSING"`
	Detail   string `json:"detail,omitempty" doc:"What went wrong in this occurrence"`
	Hint     string `json:"hint,omitempty" doc:"What to do about it"`
	Instance string `json:"instance,omitempty"`
	TraceID  string `json:"traceId,omitempty" doc:"Quote this when reporting a problem"`
	AuditID  string `json:"auditId,omitempty" doc:"The audit event that recorded this refusal or failure"`
	// Errors locates each invalid value.
	Errors []*FieldError `json:"errors,omitempty" doc:"The failing fields"`
	// Extensions are members a surface adds (the agent's toolCalls, say).
	// They are written beside the standard ones.
	Extensions map[string]any `json:"-"`
}

// FieldError locates one invalid value: "body.name", "query.limit",
// "arguments.name", "header.Idempotency-Key".
type FieldError struct {
	Location string `json:"location,omitempty" doc:"Where the error is, e.g. body.items[3].tags or query.limit"`
	Message  string `json:"message,omitempty" doc:"What is wrong"`
	Value    any    `json:"value,omitempty" doc:"The value at the location"`
}

// New is a problem whose status, title and type come from code.
func New(code Code, detail string) *Problem {
	status := code.Status()
	return &Problem{Type: code.Type(), Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// Newf is New with a formatted detail.
func Newf(code Code, format string, args ...any) *Problem {
	return New(code, fmt.Sprintf(format, args...))
}

// WithHint sets the hint and returns p, for one-line construction.
func (p *Problem) WithHint(hint string) *Problem { p.Hint = hint; return p }

// WithField adds a located error.
func (p *Problem) WithField(location, message string) *Problem {
	p.Errors = append(p.Errors, &FieldError{Location: location, Message: message})
	return p
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return string(p.Code)
	}
	return string(p.Code) + ": " + p.Detail
}

// GetStatus lets HTTP frameworks (Huma) read the status, which is always
// the code's.
func (p *Problem) GetStatus() int {
	q := *p
	q.normalize()
	return q.Status
}

// ContentType makes Huma send application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// normalize fills what the code decides, so no writer can disagree with
// the table.
func (p *Problem) normalize() {
	if p.Code == "" {
		p.Code = FromStatus(p.Status)
	}
	p.Status = p.Code.Status()
	p.Type = p.Code.Type()
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
}

// MarshalJSON writes the standard members, with status, type and title
// from the code, then the extensions.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	q := *p
	q.normalize()
	b, err := json.Marshal((*plain)(&q))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	ext, err := json.Marshal(p.Extensions)
	if err != nil {
		return nil, err
	}
	out := append(b[:len(b)-1:len(b)-1], ',')
	return append(out, ext[1:]...), nil
}

// Write sends p as application/problem+json with the trace id in the body
// and in X-Trace-Id. Status, title and type come from p's code.
func Write(w http.ResponseWriter, traceID string, p *Problem) {
	p.normalize()
	if p.TraceID == "" {
		p.TraceID = traceID
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.TraceID != "" {
		h.Set("X-Trace-Id", p.TraceID)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Normalize is for frameworks that write p themselves (Huma): it fills
// status, type and title from the code.
func Normalize(p *Problem) *Problem { p.normalize(); return p }

// ErrNotProblem is Decode's answer for a body that is not a problem
// document (a proxy's HTML page, say).
var ErrNotProblem = errors.New("problem: not a problem document")

// Decode reads a problem document. Members it does not know go into
// Extensions. A body without a code is ErrNotProblem; status, when the
// body lacks it, is the HTTP status the body came with.
func Decode(body []byte, status int) (*Problem, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, ErrNotProblem
	}
	type plain Problem
	var p plain
	if err := json.Unmarshal(body, &p); err != nil || p.Code == "" {
		return nil, ErrNotProblem
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(body, &all)
	for k, v := range all {
		if !standard[k] {
			var x any
			if json.Unmarshal(v, &x) == nil {
				if p.Extensions == nil {
					p.Extensions = map[string]any{}
				}
				p.Extensions[k] = x
			}
		}
	}
	if p.Status == 0 {
		p.Status = status
	}
	return (*Problem)(&p), nil
}

// DecodeResponse reads res's body (up to 1 MiB) as a problem document.
func DecodeResponse(res *http.Response) (*Problem, []byte, error) {
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, b, err
	}
	p, err := Decode(b, res.StatusCode)
	return p, b, err
}

var standard = map[string]bool{"type": true, "title": true, "status": true, "code": true, "detail": true,
	"hint": true, "instance": true, "traceId": true, "auditId": true, "errors": true}

// Line is p as one line for a terminal: code, detail, the other failing
// fields, the hint and the trace id.
func (p *Problem) Line() string {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	s := fmt.Sprintf("%s (%d): %s", p.Code, p.Status, msg)
	if len(p.Errors) > 1 {
		var locs []string
		for _, e := range p.Errors[1:] {
			locs = append(locs, e.Location+": "+e.Message)
		}
		s += "; also " + strings.Join(locs, "; ")
	}
	if p.Hint != "" {
		s += " — " + p.Hint
	}
	if p.TraceID != "" {
		s += " [trace " + p.TraceID + "]"
	}
	return s
}

// IsJSONMediaType says whether a Content-Type is JSON: application/json or
// any application/…+json, with parameters or without. Every surface
// answers UNSUPPORTED_MEDIA_TYPE to a body of any other type.
func IsJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}
