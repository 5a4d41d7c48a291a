package tools

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/problem"
)

// inputSchema is the one way input comes in: JSON checked for text that
// decoding would mangle, validated against the JSON Schema derived from a Go
// type (field-located errors, unknown fields refused), then decoded into that
// type. Every tool's input and the public link forms go through it.
type inputSchema struct {
	reg    huma.Registry
	schema *huma.Schema
	typ    reflect.Type
}

func newInputSchema(reg huma.Registry, typ reflect.Type, name string) *inputSchema {
	return &inputSchema{reg: reg, schema: reg.Schema(typ, false, name), typ: typ}
}

// decode validates the input (raw, or args when a surface decoded it
// already) against the schema and decodes it into a new value of the type,
// returning a pointer to it.
func (s *inputSchema) decode(raw json.RawMessage, args map[string]any) (any, error) {
	// No arguments for a tool that takes none (whoami, on every REST
	// GET /me) is valid as it is: encoding, validating and decoding {}
	// would only confirm it.
	if args != nil && len(args) == 0 && s.typ.Kind() == reflect.Struct && s.typ.NumField() == 0 {
		return reflect.New(s.typ).Interface(), nil
	}
	var generic any
	if args != nil {
		generic = args
		b, err := json.Marshal(args)
		if err != nil {
			return nil, &Error{Code: problem.InvalidInput, Message: "the input cannot be encoded: " + err.Error()}
		}
		raw = b
	} else {
		if len(strings.TrimSpace(string(raw))) == 0 {
			raw = json.RawMessage("{}")
		}
		if e := CheckText(raw, "body"); e != nil {
			return nil, e
		}
		if err := json.Unmarshal(raw, &generic); err != nil {
			return nil, &Error{Code: problem.InvalidInput, Message: "the input is not valid JSON: " + err.Error(),
				Errors: []FieldError{{Location: "body", Message: "not valid JSON"}}}
		}
	}
	if _, isObj := generic.(map[string]any); !isObj {
		return nil, &Error{Code: problem.InvalidInput, Message: "the input must be a JSON object, not " + JSONKind(generic),
			Errors: []FieldError{{Location: "body", Message: "must be a JSON object"}}}
	}
	if loc := findNUL(generic, "body"); loc != "" {
		// PostgreSQL cannot store NUL in text; refuse it everywhere so both
		// backends answer the same.
		return nil, &Error{Code: problem.InvalidInput, Field: strings.TrimPrefix(loc, "body."), Message: loc + ": text may not contain NUL characters",
			Errors: []FieldError{{Location: loc, Message: "text may not contain NUL characters"}}}
	}
	res := &huma.ValidateResult{}
	huma.Validate(s.reg, s.schema, huma.NewPathBuffer([]byte("body"), len("body")), huma.ModeWriteToServer, generic, res)
	if len(res.Errors) > 0 {
		e := &Error{Code: problem.InvalidInput, Message: "the input is invalid"}
		for _, ve := range res.Errors {
			if d, ok := ve.(*huma.ErrorDetail); ok {
				loc := d.Location
				// Huma locates a missing property at its parent object; name the field.
				if name, ok := strings.CutPrefix(d.Message, "expected required property "); ok {
					loc += "." + strings.TrimSuffix(name, " to be present")
				}
				e.Errors = append(e.Errors, FieldError{Location: loc, Message: d.Message})
			} else {
				e.Errors = append(e.Errors, FieldError{Message: ve.Error()})
			}
		}
		sort.Slice(e.Errors, func(i, j int) bool { return e.Errors[i].Location < e.Errors[j].Location })
		e.Field = strings.TrimPrefix(e.Errors[0].Location, "body.")
		e.Message = fmt.Sprintf("%s: %s", e.Errors[0].Location, e.Errors[0].Message)
		return nil, e
	}
	in := reflect.New(s.typ)
	if err := json.Unmarshal(raw, in.Interface()); err != nil {
		return nil, &Error{Code: problem.InvalidInput, Message: "the input does not match the schema: " + err.Error()}
	}
	return in.Interface(), nil
}

func findNUL(v any, path string) string {
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return path
		}
	case map[string]any:
		for k, val := range x {
			if strings.ContainsRune(k, 0) {
				return path
			}
			if loc := findNUL(val, path+"."+k); loc != "" {
				return loc
			}
		}
	case []any:
		for i, val := range x {
			if loc := findNUL(val, fmt.Sprintf("%s[%d]", path, i)); loc != "" {
				return loc
			}
		}
	}
	return ""
}
