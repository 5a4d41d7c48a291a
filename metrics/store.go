package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DBPoolStats is what both backends can say about their connection pool.
type DBPoolStats struct {
	MaxOpen      int
	Open         int
	InUse        int
	Idle         int
	WaitCount    int64
	WaitDuration time.Duration
}

// StoreStats is what the store offers the collector below.
type StoreStats interface {
	PoolStats() DBPoolStats
	// Backlog counts e-mails not yet sent and valuations not yet scored.
	Backlog(ctx context.Context) (outbox, valuations int, err error)
}

// RegisterStore makes /metrics report the store's pool and backlog, read
// at scrape time so the numbers are never older than the scrape. It
// replaces a store registered before (tests open many).
func RegisterStore(s StoreStats) {
	c := &storeCollector{s: s}
	storeMu <- struct{}{}
	defer func() { <-storeMu }()
	if current != nil {
		Registry.Unregister(current)
	}
	current = c
	Registry.MustRegister(c)
}

var (
	storeMu = make(chan struct{}, 1)
	current *storeCollector
)

var (
	poolMax     = desc("db_pool_max_connections", "Connections the pool may open.")
	poolOpen    = desc("db_pool_open_connections", "Connections open now, in use or idle.")
	poolInUse   = desc("db_pool_in_use_connections", "Connections running a statement now.")
	poolIdle    = desc("db_pool_idle_connections", "Open connections waiting for work.")
	poolWaits   = desc("db_pool_wait_total", "Times a caller had to wait for a connection.")
	poolWaitSec = desc("db_pool_wait_seconds_total", "Time callers spent waiting for a connection.")
	outboxDesc  = desc("outbox_pending", "E-mails in the outbox not yet sent, including those waiting to be retried.")
	valuesDesc  = desc("valuations_pending", "Valuations queued or being scored.")
)

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("veref_"+name, help, nil, nil)
}

type storeCollector struct{ s StoreStats }

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolMax, poolOpen, poolInUse, poolIdle, poolWaits, poolWaitSec, outboxDesc, valuesDesc} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.s.PoolStats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(poolMax, float64(p.MaxOpen))
	gauge(poolOpen, float64(p.Open))
	gauge(poolInUse, float64(p.InUse))
	gauge(poolIdle, float64(p.Idle))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(p.WaitCount))
	ch <- prometheus.MustNewConstMetric(poolWaitSec, prometheus.CounterValue, p.WaitDuration.Seconds())

	// A slow database must not hang the scrape; a missing backlog sample
	// is better than a failed scrape.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if outbox, vals, err := c.s.Backlog(ctx); err == nil {
		gauge(outboxDesc, float64(outbox))
		gauge(valuesDesc, float64(vals))
	}
}
