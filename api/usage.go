package api

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/store"
)

// UsageWriter batches usage rows off the request path. Rows are kept in
// memory until written: a failed flush is retried, and Close flushes what is
// left. Memory is bounded: past maxPending rows (storage failing for long
// while requests still authenticate) new rows are counted and logged as
// dropped rather than growing until the process dies.
type UsageWriter struct {
	store    store.Store
	log      zerolog.Logger
	interval time.Duration
	batch    int

	flushMu sync.Mutex // one flush at a time, or two could write the same rows
	mu      sync.Mutex
	pending []store.Usage
	dropped int
	kick    chan struct{}
	done    chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

// NewUsageWriter starts the background flusher.
func NewUsageWriter(st store.Store, log zerolog.Logger, interval time.Duration) *UsageWriter {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	w := &UsageWriter{store: st, log: log, interval: interval, batch: 500,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.wg.Add(1)
	go w.loop()
	return w
}

// Record queues a row. It never blocks on storage, except after Close: a
// request that outlived shutdown writes its row itself rather than lose it.
func (w *UsageWriter) Record(u store.Usage) {
	w.mu.Lock()
	if len(w.pending) >= maxPending {
		w.dropped++
		n := w.dropped
		w.mu.Unlock()
		if n == 1 || n%10000 == 0 {
			w.log.Error().Int("dropped", n).Msg("usage rows are being dropped: storage has refused them for too long")
		}
		return
	}
	w.pending = append(w.pending, u)
	full := len(w.pending) >= w.batch
	closed := w.closed
	w.mu.Unlock()
	if closed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			w.log.Error().Err(err).Int("pending", w.Pending()).Msg("usage rows recorded after shutdown could not be written")
		}
		return
	}
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Flush writes everything queued so far; tests and shutdown use it.
func (w *UsageWriter) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	for {
		w.mu.Lock()
		rows := w.pending
		if len(rows) > w.batch {
			rows = rows[:w.batch]
		}
		w.mu.Unlock()
		if len(rows) == 0 {
			return nil
		}
		if err := w.store.InsertUsage(ctx, rows); err != nil {
			return err
		}
		w.mu.Lock()
		w.pending = w.pending[len(rows):]
		w.mu.Unlock()
	}
}

func (w *UsageWriter) loop() {
	defer w.wg.Done()
	t := time.NewTicker(w.interval)
	defer t.Stop()
	backoff := w.interval
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		case <-w.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.Flush(ctx)
		cancel()
		if err != nil {
			w.log.Warn().Err(err).Int("pending", w.Pending()).Msg("usage flush failed; rows kept for retry")
			backoff = min(backoff*2, 30*time.Second)
			select {
			case <-w.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = w.interval
	}
}

// maxPending bounds the rows held for retry (about 60 MB).
const maxPending = 200_000

// Dropped is how many rows were refused because the queue was full.
func (w *UsageWriter) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Pending is the number of rows not yet written.
func (w *UsageWriter) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Close stops the flusher and writes what is left, retrying until ctx ends.
func (w *UsageWriter) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
	}
	w.mu.Unlock()
	w.wg.Wait()
	for {
		err := w.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			w.log.Error().Err(err).Int("lost", w.Pending()).Msg("usage rows could not be written before shutdown")
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
