package main

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/tools"
)

// operation is one tool of the catalogue as a CLI command: the same name,
// HTTP binding and input schema the REST and MCP surfaces serve, so the CLI
// cannot miss or mistype an operation.
type operation struct {
	tool       *tools.Tool
	noun, verb string   // "references", "send-invitations"; noun "" for top-level
	method     string   // HTTP method
	path       string   // full path with {params}
	pathParams []string // in the order they appear in the path
	params     []param  // query and body parameters
}

// param is one query or body field of an operation's input.
type param struct {
	name     string // as in the JSON schema, e.g. candidateId
	in       string // "query" or "body"
	typ      string // JSON schema type: string, integer, number, boolean, array, object
	itemType string // for arrays
	desc     string
	enum     []string
	required bool
}

// flaggable says whether the parameter can be given as a flag; objects and
// arrays of objects come only in the request file.
func (p param) flaggable() bool {
	switch p.typ {
	case "string", "integer", "number", "boolean":
		return true
	case "array":
		return p.itemType == "string"
	}
	return false
}

// verbAliases keep the names the CLI had before it was generated.
var verbAliases = map[string][]string{
	"references_send_invitations": {"invite"},
}

// catalogueOperations reads the catalogue the server registers. The
// registry is built without a store: only the specs are read.
func catalogueOperations() []operation {
	h, err := auth.NewHasher(make([]byte, auth.MinPepperLen))
	if err != nil {
		panic(err)
	}
	reg := tools.New(tools.NewRegistry(nil, nil), tools.Deps{Hasher: h})
	var ops []operation
	for _, t := range reg.Tools() {
		if t.HTTP.Method == "" {
			continue
		}
		ops = append(ops, newOperation(t))
	}
	return ops
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

func newOperation(t *tools.Tool) operation {
	op := operation{tool: t, method: t.HTTP.Method, path: "/v1/api" + t.HTTP.Path}
	if noun, verb, ok := strings.Cut(t.Name, "_"); ok {
		op.noun, op.verb = noun, strings.ReplaceAll(verb, "_", "-")
	} else {
		op.verb = t.Name
	}
	for _, m := range pathParam.FindAllStringSubmatch(op.path, -1) {
		op.pathParams = append(op.pathParams, m[1])
	}
	where := fieldLocations(t.InType)
	props, _ := t.InputSchema["properties"].(map[string]any)
	required := map[string]bool{}
	if req, ok := t.InputSchema["required"].([]any); ok {
		for _, r := range req {
			if s, ok := r.(string); ok {
				required[s] = true
			}
		}
	}
	for _, name := range sortedKeys(props) {
		in := where[name]
		if in == "" {
			in = "body"
		}
		if in == "path" {
			continue
		}
		s, _ := props[name].(map[string]any)
		p := param{name: name, in: in, typ: schemaType(s), required: required[name]}
		p.desc, _ = s["description"].(string)
		if items, ok := s["items"].(map[string]any); ok {
			p.itemType = schemaType(items)
		}
		if e, ok := s["enum"].([]any); ok {
			for _, v := range e {
				p.enum = append(p.enum, fmt.Sprint(v))
			}
		}
		op.params = append(op.params, p)
	}
	return op
}

// schemaType is the schema's type, ignoring "null" in a type list.
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if x != "null" {
				return fmt.Sprint(x)
			}
		}
	}
	return "object"
}

// fieldLocations maps each JSON field of an input type to "path" or
// "query" from its tags, as the REST surface binds them; the rest is body.
func fieldLocations(t reflect.Type) map[string]string {
	out := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Tag.Get("json") == "" {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Tag.Get("path") != "":
				out[name] = "path"
			case f.Tag.Get("query") != "":
				out[name] = "query"
			}
		}
	}
	walk(t)
	return out
}

// kebab turns a schema field name into a flag name: candidateId → candidate-id.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// argName is how a path parameter shows in usage: shareId → SHARE_ID.
func argName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(kebab(s), "-", "_"))
}

// operationsByNoun groups the operations; the top-level ones (whoami)
// are under "".
func operationsByNoun(ops []operation) map[string][]operation {
	m := map[string][]operation{}
	for _, op := range ops {
		m[op.noun] = append(m[op.noun], op)
	}
	for _, list := range m {
		sort.Slice(list, func(i, j int) bool { return list[i].verb < list[j].verb })
	}
	return m
}
