package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// table is storage that refuses writes while down and dedupes by row id,
// as the real inserts do (ON CONFLICT DO NOTHING).
type table struct {
	mu      sync.Mutex
	rows    map[int]bool
	down    bool
	batches int
	poison  map[int]bool // rows the storage refuses, failing their whole statement
}

func (tb *table) insert(_ context.Context, rows []int) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.down {
		return errors.New("storage down")
	}
	for _, r := range rows {
		if tb.poison[r] {
			return errors.New("row refused")
		}
	}
	tb.batches++
	for _, r := range rows {
		tb.rows[r] = true
	}
	return nil
}

func (tb *table) setDown(v bool) { tb.mu.Lock(); tb.down = v; tb.mu.Unlock() }
func (tb *table) count() int     { tb.mu.Lock(); defer tb.mu.Unlock(); return len(tb.rows) }

func TestBlockingWriterNeverDropsWhileStorageIsDown(t *testing.T) {
	tb := &table{rows: map[int]bool{}, down: true}
	w := New(tb.insert, zerolog.Nop(), Options[int]{Interval: time.Millisecond, Size: 7, MaxPending: 20, Block: true})
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				w.Record(g*100 + i)
			}
		}()
	}
	// The recorders fill the queue and wait; none of them gives up a row.
	for w.Pending() < 20 {
		time.Sleep(time.Millisecond)
	}
	tb.setDown(false)
	wg.Wait()
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, 1000, tb.count())
	assert.Zero(t, w.Dropped())
	assert.Zero(t, w.Pending())
}

func TestDroppingWriterBoundsMemory(t *testing.T) {
	tb := &table{rows: map[int]bool{}, down: true}
	w := New(tb.insert, zerolog.Nop(), Options[int]{Interval: time.Hour, MaxPending: 5})
	for i := range 8 {
		w.Record(i)
	}
	assert.Equal(t, 5, w.Pending())
	assert.Equal(t, 3, w.Dropped())
	tb.setDown(false)
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, 5, tb.count())
}

func TestCloseWritesEverythingInBatches(t *testing.T) {
	tb := &table{rows: map[int]bool{}}
	w := New(tb.insert, zerolog.Nop(), Options[int]{Interval: time.Hour, Size: 100})
	for i := range 1234 {
		w.Record(i)
	}
	require.NoError(t, w.Close(context.Background()))
	assert.Equal(t, 1234, tb.count())
	assert.Less(t, tb.batches, 200, "rows go in batches, not one by one")
	w.Record(5000) // after Close: written directly
	assert.Equal(t, 1235, tb.count())
}

// One row storage refuses must neither hold back the rows around it
// forever nor vanish: it is written in its repaired form (here, negated).
func TestARefusedRowIsRepairedNotDroppedNorBlocking(t *testing.T) {
	tb := &table{rows: map[int]bool{}, poison: map[int]bool{37: true, 38: true}}
	w := New(tb.insert, zerolog.Nop(), Options[int]{Interval: time.Hour, Size: 100, Block: true,
		Repair: func(r int) int { return -r }})
	for i := range 100 {
		w.Record(i)
	}
	require.NoError(t, w.Flush(context.Background()))
	assert.Zero(t, w.Pending())
	assert.Equal(t, 100, tb.count())
	assert.True(t, tb.rows[-37] && tb.rows[-38] && !tb.rows[37], "the refused rows are kept, repaired")
	assert.Less(t, tb.batches, 20, "the others still go in batches")
}

func TestARefusedRowWithoutRepairWaitsAfterTheRowsBeforeIt(t *testing.T) {
	tb := &table{rows: map[int]bool{}, poison: map[int]bool{5: true}}
	w := New(tb.insert, zerolog.Nop(), Options[int]{Interval: time.Hour, Size: 100})
	for i := range 10 {
		w.Record(i)
	}
	require.Error(t, w.Flush(context.Background()))
	assert.Equal(t, 5, tb.count(), "the rows before it are written")
	assert.Equal(t, 5, w.Pending(), "it and the rows after it wait")
}

func TestRepairIsNotUsedWhileStorageIsDown(t *testing.T) {
	tb := &table{rows: map[int]bool{}, down: true}
	w := New(tb.insert, zerolog.Nop(), Options[int]{Interval: time.Hour, Size: 100, Block: true,
		Repair: func(r int) int { return -r }})
	for i := range 10 {
		w.Record(i)
	}
	require.Error(t, w.Flush(context.Background()))
	assert.Equal(t, 10, w.Pending())
	tb.setDown(false)
	require.NoError(t, w.Flush(context.Background()))
	assert.Equal(t, 10, tb.count())
	for i := range 10 {
		assert.True(t, tb.rows[i], "row %d is written as it was", i)
	}
}

// Under load rows arrive while a flush writes: here one per statement. A
// background pass writes what was queued when it began and returns; one
// chasing the queue to empty under a single deadline never finished, and
// was then counted as a failure and backed off while the queue grew.
func TestAPassWritesWhatWasQueuedAndReturnsWhileRowsKeepArriving(t *testing.T) {
	tb := &table{rows: map[int]bool{}}
	// No background loop: this test is the flusher, so no other pass can
	// take the rows first.
	w := &Writer[int]{log: zerolog.Nop(), o: Options[int]{Size: 10, MaxPending: 1000}, kick: make(chan struct{}, 1)}
	w.room = sync.NewCond(&w.mu)
	next := 1000
	w.insert = func(ctx context.Context, rows []int) error {
		if err := tb.insert(ctx, rows); err != nil {
			return err
		}
		w.Record(next) // a request answered meanwhile
		next++
		return nil
	}
	for i := range 35 {
		w.Record(i)
	}
	wrote, err := w.pass()
	require.NoError(t, err)
	assert.Equal(t, 35, wrote, "the rows queued when the pass began")
	assert.Equal(t, 4, w.Pending(), "one row arrived per statement, for the next pass")
}

func TestTheFlusherBacksOffOnlyWhenNothingWasWritten(t *testing.T) {
	down := errors.New("storage down")
	wait, b := nextWait(0, down, time.Second, time.Second, true)
	assert.Equal(t, 2*time.Second, wait, "storage refusing: back off")
	assert.Equal(t, 2*time.Second, b)
	wait, b = nextWait(0, down, 20*time.Second, time.Second, true)
	assert.Equal(t, 30*time.Second, wait, "capped")
	wait, b = nextWait(500, down, 8*time.Second, time.Second, true)
	assert.Zero(t, wait, "progress with a full batch waiting: at once")
	assert.Equal(t, time.Second, b, "and the backoff starts over")
	wait, _ = nextWait(500, nil, time.Second, time.Second, false)
	assert.Negative(t, wait, "caught up: wait for the ticker")
}
