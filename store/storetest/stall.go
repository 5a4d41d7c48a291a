package storetest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// StallProxy is a TCP proxy in front of a database that can stop
// forwarding, the way a paused server or a network partition looks to a
// client: connections stay open, bytes just stop arriving.
type StallProxy struct {
	Addr string // host:port to connect to instead of the database

	mu      sync.Mutex
	stalled bool
	resume  chan struct{} // closed when the proxy forwards again
	open    map[net.Conn]bool
}

func (p *StallProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.open[c] = true
	} else {
		delete(p.open, c)
	}
}

// NewStallProxy forwards connections made to its Addr to target (host:port)
// until the test ends.
func NewStallProxy(t testing.TB, target string) *StallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("stall proxy: %v", err)
	}
	p := &StallProxy{Addr: ln.Addr().String(), resume: make(chan struct{}), open: map[net.Conn]bool{}}
	close(p.resume)
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		p.mu.Lock()
		for c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				p.pipe(c, target, done)
			}()
		}
	}()
	return p
}

// Stall stops forwarding in both directions, for open and new connections.
func (p *StallProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled, p.resume = true, make(chan struct{})
	}
}

// Resume forwards again, including what was held back.
func (p *StallProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
}

// gate blocks while the proxy is stalled; false means the test is over.
func (p *StallProxy) gate(done <-chan struct{}) bool {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

func (p *StallProxy) pipe(c net.Conn, target string, done <-chan struct{}) {
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	if !p.gate(done) {
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	defer up.Close()
	var wg sync.WaitGroup
	copyGated := func(dst, src net.Conn) {
		defer wg.Done()
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if !p.gate(done) {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go copyGated(up, c)
	go copyGated(c, up)
	wg.Wait()
}

// ThroughProxy returns the PostgreSQL URL dsn pointed at proxy instead.
func ThroughProxy(t testing.TB, dsn, proxy string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("ThroughProxy needs a postgres:// URL: %v", err)
	}
	u.Host = proxy
	return u.String()
}
