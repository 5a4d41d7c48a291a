package main

import (
	"bufio"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logBuffer batches the server's log lines into few writes: the access log
// writes a line per request, and a write(2) per line cost as much as a
// tenth of an authenticated request. Info lines reach the output within
// logFlushEvery; warnings and errors are written through at once, with
// everything before them; Close writes what is left (serve closes it last).
// A process killed outright loses at most logFlushEvery of info lines.
type logBuffer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

const logFlushEvery = 100 * time.Millisecond

func newLogBuffer(w io.Writer) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushLoop()
	return b
}

func (b *logBuffer) flushLoop() {
	defer close(b.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			return
		}
	}
}

func (b *logBuffer) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w.Buffered() > 0 {
		_ = b.w.Flush()
	}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	return b.WriteLevel(zerolog.NoLevel, p)
}

// WriteLevel makes zerolog write warnings and errors through.
func (b *logBuffer) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	if err == nil && (b.closed || (level >= zerolog.WarnLevel && level != zerolog.NoLevel)) {
		err = b.w.Flush()
	}
	return n, err
}

// Close stops the flusher and writes what is buffered. Lines logged after
// it are written through.
func (b *logBuffer) Close() error {
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.w.Flush()
}
