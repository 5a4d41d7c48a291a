package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/verefwork/veref/auth"
)

// How a key change reaches every instance before the change is answered.
//
// Migration 0010's trigger NOTIFYs keyChannel with the prefix in the
// changing transaction, and each instance's listener evicts it. NOTIFY is
// asynchronous, so on its own another instance could still answer the very
// next request from its cache. Therefore, after committing a key change,
// the writer (any process: a server, the CLI) sends a fence on
// fenceChannel and waits, at most RevokeWait, until every listening
// instance has echoed it on ackChannel. PostgreSQL delivers notifications
// in the order their transactions committed, so a listener that has read
// the fence has already evicted everything committed before it.
//
// Listeners are found by their connection's application_name (listenerName,
// set before they go live), in pg_stat_activity: a listener whose
// connection is gone is not waited for, and its instance has already
// stopped using its cache (WatchKeys).
//
// An instance that is alive but not reading (stalled network, paused
// process) would make the writer give up at the bound, so each listener
// also holds a lease: it notifies its own private channel every quarter of
// RevokeWait, and when that notification comes back it knows everything
// committed before it was sent has been evicted; its cache is used only
// until that send time plus RevokeWait. A writer that gave up after
// RevokeWait past its commit therefore finds every instance either
// acknowledged or out of its lease: none answers from a stale entry.
const (
	keyChannel   = "veref_api_keys"
	fenceChannel = "veref_key_fences"
	ackChannel   = "veref_key_acks"
)

// listenerName is the application_name of this schema's key listeners; a
// hash keeps it within the 63 bytes PostgreSQL keeps, and ASCII (it
// replaces anything else), whatever the schema is called.
const listenerName = `'veref keys ' || to_hex(hashtextextended(coalesce(current_schema(), ''), 0))`

// DefaultRevokeWait bounds how long a key change waits for every instance
// to evict it (VEREF_REVOKE_WAIT), and so is the listeners' lease.
const DefaultRevokeWait = time.Second

// listenCheck bounds each statement on the listening connection: one that
// hangs this long means the connection is gone.
const listenCheck = 5 * time.Second

// maxRenewals bounds the renewals remembered while their notifications
// have not come back; past it the oldest are forgotten (their lease has
// long run out anyway).
const maxRenewals = 64

// SetRevokeWait sets RevokeWait (VEREF_REVOKE_WAIT); 0 makes key changes
// answer without waiting, and listeners unleased, as plain NOTIFY would.
// Every process on the database should use the same value. Call before use.
func (s *Store) SetRevokeWait(d time.Duration) { s.revokeWait = max(d, 0) }

// WatchKeys LISTENs for key changes on a connection of its own and feeds
// them to ev until ctx ends. ev is live only while the LISTEN is, and only
// within its lease: when the connection drops it is set not live (cleared
// and bypassed) and the listener reconnects with backoff. Errors go to
// OnWatchError's function.
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

// listener is one listening connection's state.
type listener struct {
	conn     *pgx.Conn
	ev       auth.KeyEvents
	lease    time.Duration // 0: unleased
	name     string        // our application_name: fences addressed to it are ours
	own      string        // private channel for lease renewals
	seq      uint64
	renewals []renewal // sent, not yet come back, oldest first
}

type renewal struct {
	seq  uint64
	sent time.Time
}

func (s *Store) listen(ctx context.Context, ev auth.KeyEvents) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("key listener: connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pid := conn.PgConn().PID()
	l := &listener{conn: conn, ev: ev, lease: s.revokeWait, own: "veref_key_lease_" + strconv.FormatUint(uint64(pid), 10)}
	if _, err := conn.Exec(ctx, "LISTEN "+keyChannel+"; LISTEN "+fenceChannel+"; LISTEN "+l.own); err != nil {
		return fmt.Errorf("key listener: %w", err)
	}
	// Named once listening, so a writer that finds it is heard, and before
	// going live, so a writer that does not find it yet committed before
	// this cache was cleared below.
	if err := conn.QueryRow(ctx, "SELECT set_config('application_name', "+listenerName+", false)").Scan(&l.name); err != nil {
		return fmt.Errorf("key listener: %w", err)
	}
	s.listenerPID.Store(pid)
	defer s.listenerPID.Store(0)
	if l.lease > 0 {
		ev.Lease(time.Time{}) // nothing is answered from memory until the first renewal comes back
	}
	ev.SetLive(true)
	return l.run(ctx)
}

// run handles notifications, renewing the lease every quarter of it (or
// proving the connection every listenCheck when unleased).
func (l *listener) run(ctx context.Context) error {
	every := listenCheck
	if l.lease > 0 {
		every = max(l.lease/4, time.Millisecond)
	}
	var next time.Time
	for {
		if !time.Now().Before(next) {
			if err := l.renew(ctx); err != nil {
				return err
			}
			next = time.Now().Add(every)
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := l.conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if err := l.handle(ctx, n); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !l.conn.IsClosed():
			// time to renew
		default:
			return fmt.Errorf("key listener: %w", err)
		}
	}
}

func (l *listener) handle(ctx context.Context, n *pgconn.Notification) error {
	switch n.Channel {
	case keyChannel:
		l.ev.Evict(n.Payload)
	case fenceChannel:
		// Everything committed before the fence was read, and evicted,
		// before it: acknowledge. Fences for other schemas are not ours.
		token, ok := strings.CutPrefix(n.Payload, l.name+" ")
		if !ok {
			return nil
		}
		return l.exec(ctx, "acknowledging", "SELECT pg_notify('"+ackChannel+"', $1)", token)
	case l.own:
		seq, _ := strconv.ParseUint(n.Payload, 10, 64)
		for len(l.renewals) > 0 && l.renewals[0].seq <= seq {
			r := l.renewals[0]
			l.renewals = l.renewals[1:]
			if r.seq == seq && l.lease > 0 {
				l.ev.Lease(r.sent.Add(l.lease))
			}
		}
	}
	return nil
}

// renew notifies our own channel; the lease it earns starts from before
// the notification was queued, so it never outlasts a writer's wait.
func (l *listener) renew(ctx context.Context) error {
	l.seq++
	r := renewal{seq: l.seq, sent: time.Now()}
	if err := l.exec(ctx, "renewing", "SELECT pg_notify($1, $2)", l.own, strconv.FormatUint(r.seq, 10)); err != nil {
		return err
	}
	if len(l.renewals) == maxRenewals {
		l.renewals = l.renewals[1:]
	}
	l.renewals = append(l.renewals, r)
	return nil
}

func (l *listener) exec(ctx context.Context, what, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, listenCheck)
	defer cancel()
	if _, err := l.conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("key listener: %s: %w", what, err)
	}
	return nil
}

// awaitEvictions runs after this process committed a key change: it
// evicts this process's caches at once, then waits until every listening
// instance has evicted it, at most RevokeWait. If it cannot tell (no
// connection, an instance not answering) it waits out the whole bound,
// after which every instance that has not acknowledged is out of its
// lease. The wait survives the caller's cancellation: the change is
// committed, and answering early would report it in force too soon.
func (s *Store) awaitEvictions(ctx context.Context) {
	s.sinks.evictAll()
	if s.revokeWait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.revokeWait)
	defer cancel()
	if err := s.fence(ctx); err != nil {
		<-ctx.Done()
	}
}

// fence sends a fence and collects the acknowledgements of this schema's
// listeners, on a pooled connection that listens only meanwhile.
func (s *Store) fence(ctx context.Context) (err error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			_, err = c.Exec(ctx, "UNLISTEN "+ackChannel)
		}
		if err != nil { // not known to be clean: not given back to the pool
			_ = c.Conn().Close(context.WithoutCancel(ctx))
		}
		c.Release()
	}()
	if _, err = c.Exec(ctx, "LISTEN "+ackChannel); err != nil {
		return err
	}
	token := auth.RandomString(16)
	var pids []int32
	// The listeners are read after the change committed: one not named yet
	// cleared its cache after the commit (see listen).
	err = c.QueryRow(ctx, `WITH me AS (SELECT `+listenerName+` AS name),
		f AS (SELECT pg_notify('`+fenceChannel+`', me.name || ' ' || $1) FROM me)
		SELECT array(SELECT a.pid FROM pg_stat_activity a, me
			WHERE a.datname = current_database() AND a.application_name = me.name) FROM f`, token).Scan(&pids)
	if err != nil {
		return err
	}
	waiting := make(map[uint32]bool, len(pids))
	for _, p := range pids {
		waiting[uint32(p)] = true
	}
	for len(waiting) > 0 {
		var n *pgconn.Notification
		if n, err = c.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		if n.Channel == ackChannel && n.Payload == token {
			delete(waiting, n.PID)
		}
	}
	return nil
}

// ListenerPID is the backend pid of the live key listener (0 when not
// listening), so tests can cut it and watch the cache fall back.
func (s *Store) ListenerPID() uint32 { return s.listenerPID.Load() }

// OnWatchError sets what hears why the key listener dropped; it runs
// before the reconnect, which waits for it to return.
func (s *Store) OnWatchError(fn func(error)) { s.onWatchError.Store(&fn) }

// sinks are the caches fed by this store, evicted directly when this
// process changes a key: its own NOTIFY would arrive a moment later.
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
