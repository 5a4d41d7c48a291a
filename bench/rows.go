package main

import (
	"context"
	"fmt"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

// printRows counts, per scenario key, the usage rows (and for MCP the
// audit events of its reads) against the responses the load generator
// received, plus the one check request made before loading.
func (b *backend) printRows(ctx context.Context, ts []*target) error {
	for _, sc := range []struct{ key, target string }{{"me", meName(b.kind)}, {"guard", guardName(b.kind)}, {"rest", restName(b.kind)}, {"mcp", mcpName(b.kind)}} {
		t := find(ts, sc.target)
		if t == nil {
			continue
		}
		answered := 1 // the check request before loading
		if t.refused {
			answered = 0
		}
		for _, r := range t.results {
			answered += r.answered
		}
		usage, err := b.countUsage(ctx, b.keyID[sc.key])
		if err != nil {
			return err
		}
		line := fmt.Sprintf("  %-48s answered %8d  usage rows %8d (%+d)", sc.target, answered, usage, usage-answered)
		if sc.key == "mcp" {
			audits, err := b.countAudit(ctx, b.keyID[sc.key])
			if err != nil {
				return err
			}
			line += fmt.Sprintf("  audit events %8d (%+d)", audits, audits-answered)
		}
		fmt.Println(line)
	}
	return nil
}

func (b *backend) countUsage(ctx context.Context, keyID string) (int, error) {
	n, page := 0, store.Page{Limit: 200}
	for {
		rows, next, err := b.st.ListUsage(ctx, benchTenant, keyID, page)
		if err != nil {
			return 0, err
		}
		n += len(rows)
		if next == "" {
			return n, nil
		}
		page.Cursor = next
	}
}

func (b *backend) countAudit(ctx context.Context, keyID string) (int, error) {
	ten := store.Tenancy{TenantID: benchTenant, Environment: auth.Test}
	n, page := 0, store.Page{Limit: 200}
	for {
		rows, next, err := b.st.ListAudit(ctx, ten, store.AuditFilter{ActorID: keyID, Surface: string(tools.SurfaceMCP)}, page)
		if err != nil {
			return 0, err
		}
		n += len(rows)
		if next == "" {
			return n, nil
		}
		page.Cursor = next
	}
}
