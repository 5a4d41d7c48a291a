package tools

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store/storetest"
)

func contractRegistry(t *testing.T) *Registry {
	hasher, err := auth.NewHasher([]byte("contract-pepper-contract-pepper-contract"))
	require.NoError(t, err)
	return New(NewRegistry(storetest.OpenSQLite(t), nil), Deps{Hasher: hasher})
}

// A write scope implies reading the same resource, as at Stripe: every
// operation a read scope allows, its write scope allows too, and the docs
// say so.
func TestWriteScopesAlsoRead(t *testing.T) {
	for _, tl := range contractRegistry(t).Tools() {
		for _, s := range tl.Policy {
			name := string(s)
			if !strings.HasSuffix(name, ":read") {
				continue
			}
			w := auth.Scope(strings.TrimSuffix(name, ":read") + ":write")
			assert.Contains(t, tl.Policy, w, "%s accepts %s but not %s", tl.Name, s, w)
			assert.Contains(t, tl.Documented(), string(w), tl.Name)
		}
	}
	assert.Equal(t, auth.Policy{auth.CandidatesRead, auth.CandidatesWrite}, auth.Reads(auth.CandidatesRead))
	assert.Equal(t, auth.Policy{auth.ReportsRead, auth.ReportsWrite, auth.ReferencesRead, auth.ReferencesWrite},
		auth.Reads(auth.ReportsRead, auth.ReferencesRead))
	for _, info := range auth.Catalogue {
		if strings.HasSuffix(string(info.Scope), ":write") {
			assert.Contains(t, info.Description, "also reads", info.Scope)
		}
	}
}

// Output schemas describe every field: an open additionalProperties tells
// a client or a model nothing about what comes back.
func TestOutputSchemasAreClosed(t *testing.T) {
	for _, tl := range contractRegistry(t).Tools() {
		for _, where := range openObjects(tl.OutputSchema, "output") {
			t.Errorf("%s: %s has an open additionalProperties", tl.Name, where)
		}
	}
}

func openObjects(v any, at string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if ap, ok := x["additionalProperties"]; ok {
			if m, isMap := ap.(map[string]any); (isMap && len(m) == 0) || ap == true {
				out = append(out, at)
			}
		}
		for k, sub := range x {
			out = append(out, openObjects(sub, at+"."+k)...)
		}
	case []any:
		for i, sub := range x {
			out = append(out, openObjects(sub, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	return out
}
