package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/verefwork/veref/auth"
)

// keyChannel is where migration 0010's trigger announces key changes.
const keyChannel = "veref_api_keys"

// listenCheck is how long the listener waits in silence before it proves
// its connection alive; a connection that died without a word is noticed
// within about this long (the cache's maximum age is the final backstop).
const listenCheck = 5 * time.Second

// WatchKeys LISTENs for key changes on a connection of its own and feeds
// them to ev until ctx ends. ev is live only while the LISTEN is: when the
// connection drops it is set not live (cleared and bypassed) and the
// listener reconnects with backoff. Errors go to OnWatchError's function.
func (s *Store) WatchKeys(ctx context.Context, ev auth.KeyEvents) error {
	s.sinks.add(&ev, ev)
	defer s.sinks.remove(&ev)
	backoff := 50 * time.Millisecond
	for {
		started := time.Now()
		err := s.listen(ctx, ev)
		ev.SetLive(false)
		if ctx.Err() != nil {
			return nil
		}
		if fn := s.onWatchError.Load(); fn != nil {
			(*fn)(err)
		}
		if time.Since(started) > time.Minute {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listen(ctx context.Context, ev auth.KeyEvents) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("key listener: connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+keyChannel); err != nil {
		return fmt.Errorf("key listener: %w", err)
	}
	s.listenerPID.Store(conn.PgConn().PID())
	defer s.listenerPID.Store(0)
	ev.SetLive(true)
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			ev.Evict(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, listenCheck)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("key listener: connection check: %w", err)
			}
		default:
			return fmt.Errorf("key listener: %w", err)
		}
	}
}

// ListenerPID is the backend pid of the live key listener (0 when not
// listening), so tests can cut it and watch the cache fall back.
func (s *Store) ListenerPID() uint32 { return s.listenerPID.Load() }

// OnWatchError sets what hears why the key listener dropped; it runs
// before the reconnect, which waits for it to return.
func (s *Store) OnWatchError(fn func(error)) { s.onWatchError.Store(&fn) }

// sinks are the caches fed by this store, evicted directly when this
// process changes a key: its own NOTIFY would arrive a moment later, after
// the writing request has already answered.
type sinks struct {
	mu sync.Mutex
	m  map[*auth.KeyEvents]auth.KeyEvents
}

func (s *sinks) add(k *auth.KeyEvents, ev auth.KeyEvents) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*auth.KeyEvents]auth.KeyEvents{}
	}
	s.m[k] = ev
}

func (s *sinks) remove(k *auth.KeyEvents) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

func (s *sinks) evictAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.m {
		ev.Evict("")
	}
}
