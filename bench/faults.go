package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/mail/mailtest"
)

// runFaults is `go run ./bench faults`: the outage measurements of issue
// 9, repeatable. It starts a PostgreSQL cluster of its own (never the
// shared one), the built server on it with a local SMTP relay for live
// invitation e-mails, and for each scenario loads the server from a Go
// load generator, injects the fault, lets it recover under load, stops the
// server gracefully and counts: answers by status, latency, the usage and
// audit rows of the requests answered, e-mails sent twice or lost, and the
// server's log lines.
//
//	go run ./bench faults                  # every scenario
//	go run ./bench faults -only stop,pause # some
func runFaults(args []string) error {
	fs := flag.NewFlagSet("faults", flag.ExitOnError)
	conns := fs.Int("c", 24, "concurrent connections of the load")
	only := fs.String("only", "", "comma-separated scenarios to run (default all): "+strings.Join(scenarioNames(), ","))
	mails := fs.Int("mails", 200, "invitation e-mails queued before the crash mid-drain")
	mailDelay := fs.Duration("mail-delay", 20*time.Millisecond, "how long the SMTP relay holds each message before acknowledging it")
	mailWait := fs.Duration("mail-wait", 3*time.Minute, "longest wait for the outbox to drain after the restart")
	keep := fs.Bool("keep", false, "keep the servers' logs (the path is printed) instead of removing them")
	_ = fs.Parse(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "veref-faults-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("server logs kept in " + tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bin, err := buildServer(ctx, tmp)
	if err != nil {
		return err
	}
	cl, err := startCluster(ctx)
	if err != nil {
		return fmt.Errorf("private PostgreSQL: %w", err)
	}
	defer cl.destroy()
	b, err := newPostgres(ctx, cl.dsn())
	if err != nil {
		return err
	}
	defer b.st.Close()
	live, _, err := b.newKeyIn(ctx, "faults live", auth.Live)
	if err != nil {
		return err
	}
	relay, err := mailtest.Start(mailtest.OnMessage(func(mailtest.Received) { time.Sleep(*mailDelay) }))
	if err != nil {
		return err
	}
	defer relay.Close()
	port, err := freePort()
	if err != nil {
		return err
	}
	f := &faultRun{ctx: ctx, bin: bin, tmp: tmp, b: b, cl: cl, relay: relay, liveKey: live,
		addr: fmt.Sprintf("127.0.0.1:%d", port), mails: *mails, mailWait: *mailWait,
		env: []string{"VEREF_MAIL=", "VEREF_SMTP_ADDR=" + relay.Addr, "VEREF_SMTP_FROM=" + faultsFrom}}
	fmt.Printf("private PostgreSQL 15 on 127.0.0.1:%d (%s); server %s; SMTP relay %s (holds each message %s)\n",
		cl.port, cl.dir, f.addr, relay.Addr, *mailDelay)
	fmt.Printf("load: Go generator, %d connections (GET /me, POST /candidates, MCP candidates_list, a third each); %d CPUs; load average %s\n\n",
		*conns, numCPU(), loadAverage())
	for _, sc := range scenarios {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), sc.name) {
			continue
		}
		if err := f.scenario(sc, *conns); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}

const faultsFrom = "veref@faults.test"

// faultRun is what the scenarios share.
type faultRun struct {
	ctx      context.Context
	bin, tmp string
	b        *backend
	cl       *cluster
	relay    *mailtest.Relay
	liveKey  string
	addr     string
	env      []string
	mails    int
	mailWait time.Duration

	srv      *proc
	killedAt time.Time // the last SIGKILL of the scenario
	logs     []string
	notes    []string // what the fault itself saw, printed with the results
	starts   int
}

// start runs a server on the run's fixed address, so the load reaches
// each restart without being told.
func (f *faultRun) start(name string) error {
	f.starts++
	path := filepath.Join(f.tmp, fmt.Sprintf("%s-%d.log", name, f.starts))
	p, err := startServerAt(f.ctx, f.bin, f.b.dbURL, f.b.pepper, path, f.addr, f.env...)
	if err != nil {
		return err
	}
	f.srv = p
	f.logs = append(f.logs, path)
	return nil
}

func (f *faultRun) note(format string, a ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, a...))
}

// pause waits d unless the run is interrupted.
func (f *faultRun) pause(d time.Duration) error {
	select {
	case <-f.ctx.Done():
		return f.ctx.Err()
	case <-time.After(d):
		return nil
	}
}

type scenario struct {
	name, title string
	fault       func(f *faultRun) error
}

var scenarios = []scenario{
	{"stop", "PostgreSQL stopped for 5 s under load (pg_ctl stop -m fast, then start)", func(f *faultRun) error {
		if err := f.cl.stop(f.ctx); err != nil {
			return err
		}
		t0 := time.Now()
		if err := f.pause(5 * time.Second); err != nil {
			return err
		}
		err := f.cl.start(f.ctx)
		f.note("database down %s (stop to accepting again)", time.Since(t0).Round(time.Millisecond))
		return err
	}},
	{"pause", "PostgreSQL paused for 10 s under load (SIGSTOP the postmaster and its backends, then SIGCONT)", func(f *faultRun) error {
		if err := f.cl.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		err := f.pause(10 * time.Second)
		if cerr := f.cl.signal(syscall.SIGCONT); cerr != nil {
			return cerr
		}
		return err
	}},
	{"mail", "crash mid-drain: invitation e-mails queued, SIGKILL while the outbox drains, restart", (*faultRun).crashMidDrain},
	{"sigterm", "SIGTERM under load, restart after it exits", func(f *faultRun) error {
		t0 := time.Now()
		f.srv.stop()
		f.note("SIGTERM to exit: %s", time.Since(t0).Round(time.Millisecond))
		return f.restart("sigterm")
	}},
	{"sigkill", "SIGKILL under load, restart", func(f *faultRun) error {
		f.killedAt = time.Now()
		f.srv.kill()
		return f.restart("sigkill")
	}},
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

func (f *faultRun) restart(name string) error {
	if err := f.pause(500 * time.Millisecond); err != nil {
		return err
	}
	t0 := time.Now()
	err := f.start(name)
	f.note("restart to listening: %s", time.Since(t0).Round(time.Millisecond))
	return err
}

// scenario runs one fault under load and prints what it cost.
func (f *faultRun) scenario(sc scenario, conns int) error {
	f.logs, f.notes, f.killedAt = nil, nil, time.Time{}
	if err := f.start(sc.name); err != nil {
		return err
	}
	fmt.Printf("== %s: %s\n", sc.name, sc.title)
	load := &faultLoad{base: "http://" + f.addr, b: f.b, conns: conns}
	lctx, stopLoad := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load.run(lctx) }()
	began := time.Now()
	err := f.pause(3 * time.Second) // steady load first
	if err == nil {
		err = sc.fault(f)
	}
	if err == nil {
		err = f.pause(3 * time.Second) // then recovery, still under load
	}
	stopLoad()
	wg.Wait()
	loadFor := time.Since(began)
	f.srv.stop() // graceful: the usage rows still batched are written
	if err != nil {
		return err
	}
	for _, n := range f.notes {
		fmt.Println("  " + n)
	}
	fmt.Printf("  answers over %s: %s\n", loadFor.Round(100*time.Millisecond), summarize(load.shots))
	for _, kind := range []string{"me", "post", "mcp"} {
		var of []shot
		for _, s := range load.shots {
			if s.kind == kind {
				of = append(of, s)
			}
		}
		fmt.Printf("    %-4s %s\n", kind, summarize(of))
	}
	if err := f.printRows(load.shots); err != nil {
		return err
	}
	if err := printLogs(f.logs); err != nil {
		return err
	}
	fmt.Printf("  load average after: %s\n\n", loadAverage())
	return nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
