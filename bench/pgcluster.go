package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pgBin is where Debian and Ubuntu install PostgreSQL 15's programs.
const pgBin = "/usr/lib/postgresql/15/bin"

// cluster is a PostgreSQL of the fault runs' own, in a temporary
// directory on a free port: stopping or pausing it disturbs nobody.
// PostgreSQL refuses to run as root, so it runs as the postgres user.
type cluster struct {
	dir  string // owned by the postgres user
	port int
	as   []string // runuser prefix, empty when not root
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// DSN of the cluster's postgres database.
func (c *cluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func startCluster(ctx context.Context) (*cluster, error) {
	dir, err := os.MkdirTemp("", "veref-faults-pg-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		c.as = []string{"runuser", "-u", "postgres", "--"}
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	if err := c.run(ctx, "initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		return nil, err
	}
	return c, c.start(ctx)
}

func (c *cluster) run(ctx context.Context, prog string, args ...string) error {
	argv := append(append(append([]string{}, c.as...), filepath.Join(pgBin, prog)), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// start runs the cluster and waits until it accepts connections. Only
// 127.0.0.1 and a socket in the cluster's own directory.
func (c *cluster) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", c.port, c.dir)
	return c.run(ctx, "pg_ctl", "start", "-w", "-D", c.data(), "-l", filepath.Join(c.dir, "postgres.log"), "-o", opts)
}

// stop is `pg_ctl stop -m fast`: sessions are ended, the cluster shuts
// down cleanly, as an operator restarting the database does.
func (c *cluster) stop(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.data())
}

// signal sends sig to the postmaster and every backend it started: with
// SIGSTOP the database keeps its connections open and answers nothing,
// as a paused VM or a partition looks to the server.
func (c *cluster) signal(sig syscall.Signal) error {
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := append([]int{pid}, childrenOf(pid)...)
	for _, p := range pids {
		if err := syscall.Kill(p, sig); err != nil && p == pid {
			return err
		}
	}
	return nil
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// destroy stops the cluster at once and removes its files.
func (c *cluster) destroy() {
	_ = c.signal(syscall.SIGCONT) // a paused cluster cannot stop
	_ = c.run(context.Background(), "pg_ctl", "stop", "-w", "-m", "immediate", "-D", c.data())
	_ = os.RemoveAll(c.dir)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
