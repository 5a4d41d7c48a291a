package api

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/batch"
	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/store"
)

// UsageWriter batches usage rows off the request path. Memory is bounded:
// past 200,000 rows (storage failing for long while requests still
// authenticate) new rows are counted and logged as dropped rather than
// growing until the process dies.
type UsageWriter = batch.Writer[store.Usage]

// NewUsageWriter starts the background flusher (interval 0: 500ms).
func NewUsageWriter(st store.Store, log zerolog.Logger, interval time.Duration) *UsageWriter {
	insert := func(ctx context.Context, rows []store.Usage) error {
		err := st.InsertUsage(ctx, rows)
		if err == nil {
			metrics.UsageRowsWritten.Add(float64(len(rows)))
		}
		return err
	}
	return batch.New(insert, log, batch.Options[store.Usage]{What: "usage rows", Interval: interval,
		OnDrop: metrics.UsageRowsDropped.Inc})
}

// AuditWriter batches the audit events of reads (MCP and agent), and of
// refusals storage did not take at once; it never drops one, making
// requests wait instead while storage refuses them. An event storage
// refuses as it is (while taking the others) is written in its Storable
// form, its data kept whole.
type AuditWriter = batch.Writer[store.AuditEvent]

// NewAuditWriter starts the background flusher (interval 0: 500ms).
func NewAuditWriter(st store.Store, log zerolog.Logger, interval time.Duration) *AuditWriter {
	return batch.New(st.InsertAudits, log, batch.Options[store.AuditEvent]{What: "audit events", Interval: interval, Block: true,
		Repair: store.AuditEvent.Storable})
}
