package store_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

func TestNewAuditEventIsComplete(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := store.NewAuditEvent(store.Tenancy{TenantID: "ten_a", Environment: auth.Test},
		store.Actor{Kind: store.ActorRecruiter, ID: "rec_1"}, store.SurfaceConsole, "trace-1", "api_key.revoke", at).
		On("api_key", "key_1").WithData(map[string]any{"note": "n"})
	assert.Empty(t, ev.Missing())
	assert.True(t, strings.HasPrefix(ev.ID, "evt_"), ev.ID)
	assert.Equal(t, store.AuditEvent{ID: ev.ID, TenantID: "ten_a", Environment: auth.Test, ActorKind: store.ActorRecruiter,
		ActorID: "rec_1", Surface: store.SurfaceConsole, Action: "api_key.revoke", TargetType: "api_key", TargetID: "key_1",
		TraceID: "trace-1", Outcome: store.OutcomeOK, Data: map[string]any{"note": "n"}, At: at}, ev)
	assert.Equal(t, store.Outcome("SCOPE_MISSING"), ev.WithOutcome("SCOPE_MISSING").Outcome)

	// Each required field left out is named.
	for field, drop := range map[string]func(*store.AuditEvent){
		"id":          func(e *store.AuditEvent) { e.ID = "" },
		"tenantId":    func(e *store.AuditEvent) { e.TenantID = "" },
		"environment": func(e *store.AuditEvent) { e.Environment = "" },
		"actorKind":   func(e *store.AuditEvent) { e.ActorKind = "" },
		"actorId":     func(e *store.AuditEvent) { e.ActorID = "" },
		"surface":     func(e *store.AuditEvent) { e.Surface = "" },
		"traceId":     func(e *store.AuditEvent) { e.TraceID = "" },
		"action":      func(e *store.AuditEvent) { e.Action = "" },
		"outcome":     func(e *store.AuditEvent) { e.Outcome = "" },
		"at":          func(e *store.AuditEvent) { e.At = time.Time{} },
	} {
		e := ev
		drop(&e)
		assert.Equal(t, []string{field}, e.Missing(), field)
	}
}

func TestAuditEventOutsideAnyTenant(t *testing.T) {
	sys := store.NewAuditEvent(store.Tenancy{}, store.Actor{Kind: store.ActorSystem, ID: "veref-login"},
		store.SurfaceCLI, "trace-1", "cli_session.issue", time.Now())
	assert.Empty(t, sys.Missing(), "the system may act outside any tenant")
	rec := store.NewAuditEvent(store.Tenancy{}, store.Actor{Kind: store.ActorRecruiter, ID: "rec_1"},
		store.SurfaceCLI, "trace-1", "cli_session.approve", time.Now())
	assert.Equal(t, []string{"tenantId", "environment"}, rec.Missing(), "anyone else acts in a tenant")
}

// TestAuditEventsAreBuilt fails when code outside the store builds an audit
// event by hand: NewAuditEvent is what keeps every event complete.
func TestAuditEventsAreBuilt(t *testing.T) {
	root := filepath.Join("..")
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || name == "npm" || strings.HasPrefix(name, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			filepath.ToSlash(path) == "../store/audit.go" || strings.Contains(filepath.ToSlash(path), "/storetest/") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if name := typeName(lit.Type); name == "store.AuditEvent" || name == "AuditEvent" && f.Name.Name == "store" {
				found = append(found, fset.Position(lit.Pos()).String())
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, found, "build audit events with store.NewAuditEvent")
}

func typeName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		if pkg, ok := x.X.(*ast.Ident); ok {
			return pkg.Name + "." + x.Sel.Name
		}
	}
	return ""
}
