// Package logdedup keeps a fault from flooding the log. When storage is
// down every request, worker poll and flush fails the same way, and one
// line per failure buried everything else (a 9-second outage once wrote
// 21,608 identical lines). A Deduper writes the first occurrence of a line
// in full, then, per interval, one line counting the repeats it held back.
//
// Lines are the same when their level, message and error class match; the
// class is the error's text with every word holding a digit masked, so
// addresses, ports, ids and durations do not make each failure new.
package logdedup

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultInterval is how often held-back repeats are counted in the log.
const DefaultInterval = 10 * time.Second

// maxKeys bounds the memory of distinct lines; past it new lines are
// written without de-duplication rather than forgotten.
const maxKeys = 1024

type key struct {
	level      zerolog.Level
	msg, class string
}

type entry struct {
	log     zerolog.Logger
	start   time.Time // when the current interval began
	held    int       // repeats held back in it
	lastErr string
}

// Deduper de-duplicates repeated log lines. A nil *Deduper writes every
// line, so a part built without one logs as it always did.
type Deduper struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	seen     map[key]*entry
}

// New makes a Deduper counting repeats per interval (DefaultInterval when
// zero) by the clock now (time.Now when nil).
func New(interval time.Duration, now func() time.Time) *Deduper {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Deduper{interval: interval, now: now, seen: map[key]*entry{}}
}

// Error is Event at error level.
func (d *Deduper) Error(log zerolog.Logger, msg string, err error) *zerolog.Event {
	return d.Event(log, zerolog.ErrorLevel, msg, err)
}

// Warn is Event at warn level.
func (d *Deduper) Warn(log zerolog.Logger, msg string, err error) *zerolog.Event {
	return d.Event(log, zerolog.WarnLevel, msg, err)
}

// Event starts the line msg (with err, when not nil) at level on log, or
// returns nil when the same line was already written in this interval:
// zerolog's methods do nothing on a nil event, so callers add their
// fields either way. Finish the line with Send, not Msg: the message is
// already set.
func (d *Deduper) Event(log zerolog.Logger, level zerolog.Level, msg string, err error) *zerolog.Event {
	if d != nil && !d.first(log, key{level, msg, Class(err)}, err) {
		return nil
	}
	ev := log.WithLevel(level)
	if err != nil {
		ev = ev.Err(err)
	}
	return ev.Str(zerolog.MessageFieldName, msg)
}

// first records an occurrence and reports whether to write it.
func (d *Deduper) first(log zerolog.Logger, k key, err error) bool {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.seen[k]
	if e == nil {
		if len(d.seen) < maxKeys {
			d.seen[k] = &entry{log: log, start: now}
		}
		return true
	}
	if now.Sub(e.start) >= d.interval {
		if e.held == 0 {
			// Quiet for a whole interval: a fresh occurrence.
			e.start = now
			return true
		}
		// No flush came round (Run is not running): count here.
		d.report(k, e, now)
	}
	e.held++
	if err != nil {
		e.lastErr = err.Error()
	}
	return false
}

// report writes the count of e's held-back repeats and starts a new
// interval at now. d.mu is held.
func (d *Deduper) report(k key, e *entry, now time.Time) {
	window := now.Sub(e.start).Round(time.Second)
	if window < time.Second { // shutdown, inside the first second
		window = now.Sub(e.start).Round(time.Millisecond)
	}
	ev := e.log.WithLevel(k.level).Str("repeats_of", k.msg).Int("repeated", e.held)
	if e.lastErr != "" {
		ev = ev.Str("error", e.lastErr)
	}
	ev.Msg(fmt.Sprintf("%s: repeated %d times in the last %s", k.msg, e.held, window))
	e.start, e.held = now, 0
}

// Flush writes the count of every line whose interval has ended with
// repeats held back, and forgets lines that were quiet for a whole
// interval (their next occurrence is written in full again).
func (d *Deduper) Flush() {
	if d == nil {
		return
	}
	d.flush(false)
}

// Close writes every count still held back, interval ended or not: for
// shutdown, so the last repeats of a fault are not lost from the log.
func (d *Deduper) Close() {
	if d == nil {
		return
	}
	d.flush(true)
}

func (d *Deduper) flush(all bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.seen {
		if !all && now.Sub(e.start) < d.interval {
			continue
		}
		if e.held == 0 {
			delete(d.seen, k)
			continue
		}
		d.report(k, e, now)
	}
}

// Run flushes every interval until ctx ends, then writes what is held.
func (d *Deduper) Run(ctx context.Context) {
	if d == nil {
		return
	}
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.Close()
			return
		case <-t.C:
			d.Flush()
		}
	}
}

// Class is the part of err that makes two failures the same: its text
// with every word holding a digit (addresses, ports, ids, durations)
// masked as "#".
func Class(err error) string {
	if err == nil {
		return ""
	}
	words := strings.Fields(err.Error())
	for i, w := range words {
		if strings.ContainsAny(w, "0123456789") {
			words[i] = "#"
		}
	}
	return strings.Join(words, " ")
}
