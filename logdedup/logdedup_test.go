package logdedup_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/logdedup"
)

// clock is a hand-moved clock: the tests never wait for time to pass.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

func setup() (*logdedup.Deduper, *clock, zerolog.Logger, *bytes.Buffer) {
	c := &clock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	return logdedup.New(10*time.Second, c.now), c, zerolog.New(&buf), &buf
}

// fail is one failure as a request under an outage logs it: the error
// text carries the port and a duration, which differ between failures.
func fail(d *logdedup.Deduper, log zerolog.Logger, i int) {
	err := fmt.Errorf("storage: dial tcp 127.0.0.1:%d: connect: connection refused after %dms", 5000+i%3, i)
	d.Error(log, "operation failed", err).Str("trace_id", fmt.Sprint("trace-", i)).Send()
}

func TestRepeatedFailuresWriteOneLineAndACount(t *testing.T) {
	d, c, log, buf := setup()
	for i := range 1000 {
		fail(d, log, i)
		c.advance(time.Millisecond) // 1000 failures within one second
	}
	got := lines(t, buf)
	require.Len(t, got, 1, "only the first occurrence is written at once")
	assert.Equal(t, "operation failed", got[0]["message"])
	assert.Equal(t, "error", got[0]["level"])
	assert.Equal(t, "trace-0", got[0]["trace_id"])
	assert.Contains(t, got[0]["error"], "connection refused")

	d.Flush() // within the interval: nothing to count yet
	require.Len(t, lines(t, buf), 1)

	c.advance(10 * time.Second)
	d.Flush()
	got = lines(t, buf)
	require.Len(t, got, 2)
	assert.Equal(t, "operation failed: repeated 999 times in the last 11s", got[1]["message"])
	assert.Equal(t, "error", got[1]["level"])
	assert.EqualValues(t, 999, got[1]["repeated"])
	assert.Equal(t, "operation failed", got[1]["repeats_of"])
	assert.Contains(t, got[1]["error"], "after 999ms", "the count carries the last error held back")
}

func TestACountPerIntervalWhileTheFaultLasts(t *testing.T) {
	d, c, log, buf := setup()
	for i := range 25 { // one failure a second for 25 seconds
		fail(d, log, i)
		c.advance(time.Second)
		if i%5 == 4 {
			d.Flush()
		}
	}
	got := lines(t, buf)
	require.Len(t, got, 3, "first occurrence, then one count per 10s")
	assert.Equal(t, "operation failed", got[0]["message"])
	assert.EqualValues(t, 9, got[1]["repeated"])
	assert.EqualValues(t, 10, got[2]["repeated"])

	// Shutdown writes what is still held back, its interval unfinished.
	d.Close()
	got = lines(t, buf)
	require.Len(t, got, 4)
	assert.EqualValues(t, 5, got[3]["repeated"])
	d.Close()
	assert.Len(t, lines(t, buf), 4, "nothing is counted twice")
}

func TestCountsWithoutAFlusher(t *testing.T) {
	// Without Run (or Flush), the next occurrence after the interval
	// writes the count itself.
	d, c, log, buf := setup()
	for i := range 5 {
		fail(d, log, i)
	}
	c.advance(10 * time.Second)
	fail(d, log, 5)
	got := lines(t, buf)
	require.Len(t, got, 2)
	assert.EqualValues(t, 4, got[1]["repeated"])
}

func TestAQuietIntervalStartsOver(t *testing.T) {
	d, c, log, buf := setup()
	fail(d, log, 1)
	c.advance(10 * time.Second)
	d.Flush() // nothing repeated: forgotten, no count line
	fail(d, log, 2)
	got := lines(t, buf)
	require.Len(t, got, 2)
	assert.Equal(t, "operation failed", got[1]["message"], "a new fault is written in full")
	c.advance(11 * time.Second)
	fail(d, log, 3) // quiet for an interval, never flushed: written in full too
	assert.Len(t, lines(t, buf), 3)
}

func TestDifferentLinesAreKeptApart(t *testing.T) {
	d, _, log, buf := setup()
	for range 3 {
		d.Error(log, "operation failed", errors.New("timeout: context deadline exceeded")).Send()
		d.Error(log, "operation failed", errors.New("ERROR: duplicate key value violates unique constraint")).Send()
		d.Warn(log, "operation failed", errors.New("timeout: context deadline exceeded")).Send()
		d.Error(log, "flush failed", errors.New("timeout: context deadline exceeded")).Send()
		d.Error(log, "authentication unavailable", nil).Str("code", "UNAVAILABLE").Send()
	}
	got := lines(t, buf)
	require.Len(t, got, 5, "message, level and error class each tell lines apart")
	assert.Equal(t, "UNAVAILABLE", got[4]["code"])
	_, hasErr := got[4]["error"]
	assert.False(t, hasErr)
	d.Close()
	got = lines(t, buf)
	require.Len(t, got, 10)
	for _, l := range got[5:] {
		assert.EqualValues(t, 2, l["repeated"])
	}
}

func TestNilDeduperWritesEveryLine(t *testing.T) {
	var d *logdedup.Deduper
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	for i := range 3 {
		fail(d, log, i)
	}
	d.Flush()
	d.Close()
	d.Run(context.Background())
	got := lines(t, &buf)
	require.Len(t, got, 3)
	assert.Equal(t, "operation failed", got[2]["message"])
}

func TestRunCountsOnShutdown(t *testing.T) {
	d, c, log, buf := setup()
	for i := range 4 {
		fail(d, log, i)
	}
	c.advance(86_661_492 * time.Nanosecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Run(ctx) // returns at once, writing what is held
	got := lines(t, buf)
	require.Len(t, got, 2)
	assert.EqualValues(t, 3, got[1]["repeated"])
	assert.Equal(t, "operation failed: repeated 3 times in the last 87ms", got[1]["message"])
}

func TestClass(t *testing.T) {
	assert.Equal(t, "", logdedup.Class(nil))
	assert.Equal(t, "dial tcp # connect: connection refused",
		logdedup.Class(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")))
	assert.Equal(t, logdedup.Class(errors.New("valuation val_01abc: lease lost")), logdedup.Class(errors.New("valuation val_99xyz: lease lost")))
}
