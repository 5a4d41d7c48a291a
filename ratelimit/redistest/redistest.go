// Package redistest gives tests a real Redis: the shared one CI runs at
// 127.0.0.1:6379 (VEREF_TEST_REDIS_URL overrides it), or a private
// redis-server a test may stop. Under CI=true a missing Redis fails the
// test instead of skipping it.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verefwork/veref/auth"
)

// URL returns the shared Redis's URL, or skips (fails under CI) without one.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("VEREF_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("VEREF_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		missing(t, "no Redis at "+url+": "+err.Error())
	}
	return url
}

// Prefix is a key prefix no other test (or run) shares, so tests never
// need to flush the shared Redis.
func Prefix(t testing.TB) string { return "vereftest:" + auth.RandomString(10) + ":" }

// Server is a redis-server of the test's own, on an ephemeral port.
type Server struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs a private redis-server; it is stopped at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redis-server on port %d did not answer", port)
	return nil
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: .ci/run starts one)")
	}
	t.Skip(why)
}
