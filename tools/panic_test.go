package tools_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// A tool that panics is answered INTERNAL on every surface, with the panic
// in the log under the call's trace id and never in the answer.
func TestAPanickingToolIsAnsweredInternalAndLogged(t *testing.T) {
	reg := tools.NewRegistry(storetest.OpenSQLite(t), nil)
	var logs bytes.Buffer
	reg.SetLog(zerolog.New(&logs))
	type none struct{}
	tools.Add(reg, tools.Spec{Name: "boom", Description: "panics", ReadOnly: true,
		Policy: auth.Policy{}}, func(context.Context, auth.Principal, none) (none, error) {
		var m map[string]int
		m["secret-internal-detail"] = 1 // a nil-map write, as a bug would
		return none{}, nil
	})
	p := auth.Principal{TenantID: "acme", Environment: auth.Test, KeyID: "key_1"}
	for _, s := range []store.Surface{tools.SurfaceREST, tools.SurfaceMCP} {
		_, err := reg.Invoke(context.Background(), tools.Call{Principal: p, Surface: s, Tool: "boom", TraceID: "trace-boom"})
		require.Error(t, err)
		te := tools.AsError(err)
		assert.EqualValues(t, problem.Internal, te.Code)
		assert.NotContains(t, te.Message, "nil map")
	}
	assert.Contains(t, logs.String(), `"trace_id":"trace-boom"`)
	assert.Contains(t, logs.String(), "assignment to entry in nil map")
}
