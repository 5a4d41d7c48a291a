// Command veref is the one binary: the server (serve, migrate), operator
// commands (admin …) and the client commands (references, candidates, ask,
// mcp). Everything here is wiring; the work is in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		printError(os.Stderr, err)
	}
	stop()
	os.Exit(exitCode(err))
}

// Exit codes, documented in the README: scripts branch on them.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitApproval = 3 // Ask Veref stopped to wait for a human's approval
	exitAuth     = 4 // no key, or the server refused it
)

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// authError is a missing or unusable credential found before any request (exit 4).
type authError struct{ msg string }

func (e authError) Error() string { return e.msg }

// approvalError says the work waits for a human's approval (exit 3).
type approvalError struct{ msg string }

func (e approvalError) Error() string { return e.msg }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ae authError
	var pe approvalError
	var p cliProblem
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ae):
		return exitAuth
	case errors.As(err, &pe):
		return exitApproval
	case errors.As(err, &p):
		switch {
		case p.Status == 401 || strings.HasPrefix(string(p.Code), "AUTH_"):
			return exitAuth
		case strings.Contains(string(p.Code), "APPROVAL"):
			return exitApproval
		}
	}
	return exitError
}

// printError writes err as one line: scripts and people read the same
// thing. A server's detail can quote stored text, so escape sequences and
// bidirectional overrides in it are shown, not obeyed.
func printError(w io.Writer, err error) {
	msg := prose(strings.Join(strings.Fields(err.Error()), " "))
	if msg == "" {
		return
	}
	fmt.Fprintln(w, "veref: "+msg)
}

// cli is what every command reads instead of the process: tests drive the
// real commands through run with their own environment and streams.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// ran is set once cobra has parsed the line and validated arguments;
	// an untyped error before that is cobra's own usage complaint.
	ran bool
	// apiURL is --api-url of the client command that runs.
	apiURL string
}

// run is main without the process: tests start the real server through it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := c.rootCmd()
	root.SetArgs(args)
	_, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var ue usageError
	var ae authError
	var pe approvalError
	var p cliProblem
	if !c.ran && !errors.As(err, &ue) && !errors.As(err, &ae) && !errors.As(err, &pe) && !errors.As(err, &p) {
		return usageError{err.Error() + "; see veref --help"}
	}
	return err
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "veref",
		Short: "Veref API server and client",
		Long: `veref is the Veref API server and its command-line client.

Clients authenticate with VEREF_API_KEY and talk to VEREF_API_URL
(or --api-url; default ` + defaultAPIURL + `).

Exit codes: 0 ok, 1 error, 2 usage, 3 needs approval, 4 authentication.`,
		Version:       buildVersion(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			c.ran = true
			return nil
		},
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("veref {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{err.Error() + "; see " + cmd.CommandPath() + " --help"}
	})
	root.AddGroup(&cobra.Group{ID: "client", Title: "Client commands:"}, &cobra.Group{ID: "server", Title: "Server and operator commands:"})
	for _, cmd := range []*cobra.Command{c.serveCmd(), c.migrateCmd(), c.adminCmd()} {
		cmd.GroupID = "server"
		root.AddCommand(cmd)
	}
	for _, cmd := range append([]*cobra.Command{c.askCmd(), c.mcpCmd(), c.loginCmd(), c.logoutCmd()}, c.operationCmds()...) {
		cmd.GroupID = "client"
		root.AddCommand(cmd)
	}
	return root
}

// groupCmd is a noun whose verbs are subcommands: alone it prints its help,
// with an unknown verb it is a usage error (cobra would print help and exit 0).
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageError{fmt.Sprintf("%s has no command %q; see %s --help", cmd.CommandPath(), args[0], cmd.CommandPath())}
		},
	}
}

// exactArgs is cobra.ExactArgs as a usage error with the expected form.
func exactArgs(n int, form string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Sprintf("usage: %s %s", cmd.CommandPath(), form)}
		}
		return nil
	}
}

// version is set at build time with -ldflags "-X main.version=…"; without
// it, the module version go install recorded, or the commit.
var version = "dev"

func init() { version = buildVersion() }

func buildVersion() string {
	if version != "dev" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "dev-" + rev + dirty
	}
	return version
}
