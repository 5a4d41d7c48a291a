package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a child process serving HTTP at url.
type proc struct {
	cmd *exec.Cmd
	url string
}

// startProc runs cmd and waits for the line "… listening on http://…"
// (the bare handler prints the same), which carries the ephemeral port.
func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok {
				found <- strings.TrimSpace(u)
				break
			}
		}
		for sc.Scan() { // keep draining so the child never blocks on stdout
		}
	}()
	select {
	case u := <-found:
		return &proc{cmd: cmd, url: u}, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start; see %s", cmd.Path, logPath)
	}
}

// kill is SIGKILL: nothing is flushed.
func (p *proc) kill() {
	if p == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// stop asks for a graceful shutdown (which flushes queued rows) and waits.
func (p *proc) stop() {
	if p == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func startBare(ctx context.Context) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProc(exec.CommandContext(ctx, self, "bare"), os.DevNull)
}

// runBare is the reference: plain net/http answering what /v1/api/me
// answers, with no authentication, storage or logging.
func runBare() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body := []byte(`{"tenantId":"bench","environment":"test","recruiterId":"bench_recruiter","keyId":"key_0000000000000000",` +
		`"keyPrefix":"AAAAAAAAAAAA","keyName":"bench me","scopes":["candidates:read","candidates:write","references:read",` +
		`"references:write","reports:read","reports:write","valuations:read","valuations:write"]}`)
	fmt.Printf("bare listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	_ = srv.Serve(ln)
}

// startServer runs `veref serve` against dbURL on an ephemeral port.
func startServer(ctx context.Context, bin, dbURL, pepper, logPath string) (*proc, error) {
	return startServerAt(ctx, bin, dbURL, pepper, logPath, "127.0.0.1:0")
}

// startServerAt runs `veref serve` on addr; env (KEY=value) comes last,
// so it overrides the defaults below.
func startServerAt(ctx context.Context, bin, dbURL, pepper, logPath, addr string, env ...string) (*proc, error) {
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr)
	cmd.Env = append(os.Environ(), "VEREF_DATABASE_URL="+dbURL, "API_KEY_PEPPER="+pepper, "VEREF_LOG_FORMAT=json")
	// Ask Veref stays off (the benchmark needs no model), and the per-key
	// rate limit is lifted: the load is the point, not the limiter's 429s.
	cmd.Env = append(cmd.Env, "OPENROUTER_API_KEY=", "VEREF_DEFAULT_RATE_LIMIT=1000000/second", "VEREF_MAIL=log")
	cmd.Env = append(cmd.Env, env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	return startProc(cmd, logPath)
}
