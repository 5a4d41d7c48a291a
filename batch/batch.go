// Package batch writes rows off the request path: a request queues its row
// and returns, and one flusher writes queued rows together (one statement,
// one transaction) at an interval or as soon as a batch is full. Rows stay
// in memory until written: a failed flush is retried with backoff, and Close
// writes what is left. A batch that fails is split to write the rows around
// one storage refuses, so one bad row cannot hold back the others.
package batch

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Options tune a Writer; zero values take the defaults.
type Options[T any] struct {
	// What names the rows in log lines ("usage rows", "audit events").
	What string
	// Interval is the longest a row waits before a flush starts (500ms).
	Interval time.Duration
	// Size is the most rows written by one statement (500).
	Size int
	// MaxPending bounds the rows held while storage refuses them (200,000).
	MaxPending int
	// Block makes Record wait for room past MaxPending instead of dropping
	// the row: for rows that must never be lost (audit), at the price of
	// slowing requests while storage is failing.
	Block bool
	// OnDrop, when set, is told of every dropped row (for metrics).
	OnDrop func()
	// Repair, when set, gives a row storage refused alone a form it will
	// take (audit events: store.AuditEvent.Storable). The repaired row is
	// written in its place, with an error line; if storage refuses that
	// too, storage itself is failing and the row waits for the next flush.
	// Without Repair such a row waits at the head of the queue.
	Repair func(T) T
}

// Writer batches rows of type T into insert.
type Writer[T any] struct {
	insert func(context.Context, []T) error
	log    zerolog.Logger
	o      Options[T]

	flushMu sync.Mutex // one flush at a time, or two could write the same rows
	mu      sync.Mutex
	room    *sync.Cond // signalled when a flush makes room or the writer closes
	pending []T
	dropped int
	kick    chan struct{}
	done    chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

// New starts the background flusher.
func New[T any](insert func(context.Context, []T) error, log zerolog.Logger, o Options[T]) *Writer[T] {
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Size <= 0 {
		o.Size = 500
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 200_000
	}
	if o.What == "" {
		o.What = "rows"
	}
	w := &Writer[T]{insert: insert, log: log, o: o, kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	w.wg.Add(1)
	go w.loop()
	return w
}

// Record queues a row. It never waits for storage, except after Close (a
// request that outlived shutdown writes its row itself rather than lose it)
// and, with Block, while MaxPending rows are already waiting.
func (w *Writer[T]) Record(row T) {
	w.mu.Lock()
	for len(w.pending) >= w.o.MaxPending && w.o.Block && !w.closed {
		w.kickFlush()
		w.room.Wait()
	}
	if len(w.pending) >= w.o.MaxPending && !w.o.Block {
		w.dropped++
		n := w.dropped
		w.mu.Unlock()
		if w.o.OnDrop != nil {
			w.o.OnDrop()
		}
		if n == 1 || n%10000 == 0 {
			w.log.Error().Int("dropped", n).Msg(w.o.What + " are being dropped: storage has refused them for too long")
		}
		return
	}
	w.pending = append(w.pending, row)
	full := len(w.pending) >= w.o.Size
	closed := w.closed
	w.mu.Unlock()
	if closed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			w.log.Error().Err(err).Int("pending", w.Pending()).Msg(w.o.What + " recorded after shutdown could not be written")
		}
		return
	}
	if full {
		w.kickFlush()
	}
}

func (w *Writer[T]) kickFlush() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Flush writes everything queued so far; tests and shutdown use it.
func (w *Writer[T]) Flush(ctx context.Context) error {
	_, err := w.flush(func() (context.Context, context.CancelFunc) { return ctx, func() {} }, -1)
	return err
}

// flush writes queued rows a batch at a time, each under the context
// batchCtx gives it, until the queue is empty or limit rows are written
// (no limit when negative). It returns how many rows it wrote.
func (w *Writer[T]) flush(batchCtx func() (context.Context, context.CancelFunc), limit int) (int, error) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	written := 0
	for limit < 0 || written < limit {
		w.mu.Lock()
		rows, size := w.pending, w.o.Size
		if limit >= 0 {
			size = min(size, limit-written)
		}
		if len(rows) > size {
			rows = rows[:size]
		}
		w.mu.Unlock()
		if len(rows) == 0 {
			return written, nil
		}
		ctx, cancel := batchCtx()
		n, err := w.write(ctx, rows)
		cancel()
		w.mu.Lock()
		w.pending = w.pending[n:]
		if len(w.pending) == 0 {
			w.pending = nil // let the written rows' array go
		}
		w.room.Broadcast()
		w.mu.Unlock()
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// pass is one round of the background flusher: the rows queued when it
// starts, each batch under its own deadline. Under load the queue refills
// as fast as it drains; a pass that chased it to empty under one deadline
// failed though every batch was written, and its backoff let the queue grow
// toward MaxPending. Rows queued meanwhile wait for the next pass.
func (w *Writer[T]) pass() (int, error) {
	return w.flush(func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), batchTimeout)
	}, w.Pending())
}

// batchTimeout bounds one batch's statement in the background flusher.
const batchTimeout = 10 * time.Second

// nextWait is how long the flusher rests after a pass: a pass that wrote
// nothing and failed means storage is refusing, so the wait doubles up to
// 30s; one that wrote rows made progress, so it goes on at once if a full
// batch is waiting, and at the interval otherwise.
func nextWait(wrote int, err error, backoff, interval time.Duration, fullBatchWaiting bool) (wait, nextBackoff time.Duration) {
	if err != nil && wrote == 0 {
		b := min(backoff*2, 30*time.Second)
		return b, b
	}
	if fullBatchWaiting {
		return 0, interval
	}
	return -1, interval // -1: wait for the ticker or a kick
}

// write inserts rows and returns how many of them, from the first, are
// written. A failed batch is halved until the row storage refuses is
// alone (a few statements more, and only on failure), which Repair may
// then get written; rows are only ever written in order, so what is
// written is always a prefix.
func (w *Writer[T]) write(ctx context.Context, rows []T) (int, error) {
	err := w.insert(ctx, rows)
	switch {
	case err == nil:
		return len(rows), nil
	case ctx.Err() != nil:
		return 0, err
	case len(rows) > 1:
		n, err := w.write(ctx, rows[:len(rows)/2])
		if err != nil {
			return n, err
		}
		m, err := w.write(ctx, rows[len(rows)/2:])
		return n + m, err
	case w.o.Repair == nil:
		return 0, err
	}
	if rerr := w.insert(ctx, []T{w.o.Repair(rows[0])}); rerr != nil {
		return 0, err
	}
	w.log.Error().Err(err).Msg(w.o.What + ": storage refused a row as it was; wrote it in its repaired form")
	return 1, nil
}

func (w *Writer[T]) loop() {
	defer w.wg.Done()
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	backoff := w.o.Interval
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		case <-w.kick:
		}
		for {
			wrote, err := w.pass()
			if err != nil {
				w.log.Warn().Err(err).Int("written", wrote).Int("pending", w.Pending()).Msg(w.o.What + ": flush failed; rows kept for retry")
			}
			var wait time.Duration
			wait, backoff = nextWait(wrote, err, backoff, w.o.Interval, w.Pending() >= w.o.Size)
			if wait < 0 {
				break
			}
			select {
			case <-w.done:
				return
			case <-time.After(wait):
			}
		}
	}
}

// Dropped is how many rows were refused because the queue was full (never
// with Block).
func (w *Writer[T]) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Pending is the number of rows not yet written.
func (w *Writer[T]) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Close stops the flusher and writes what is left, retrying until ctx ends.
func (w *Writer[T]) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
		w.room.Broadcast()
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
			w.log.Error().Err(err).Int("lost", w.Pending()).Msg(w.o.What + " could not be written before shutdown")
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
