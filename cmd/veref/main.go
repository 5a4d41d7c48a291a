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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		var ue usageError
		if !errors.As(err, &ue) || ue.msg != "" {
			fmt.Fprintln(os.Stderr, "veref:", err)
		}
		os.Exit(exitCode(err))
	}
}

const usageText = `veref: Veref API server and client

Server and operators:
  veref serve [--dev] [--addr HOST:PORT] [--no-migrate]
  veref migrate [--dev]
  veref admin tenants create --id ID --name NAME [--clerk-org-id ORG] [--dev] [--json]
  veref admin recruiters create --tenant ID --id ID --email EMAIL [--clerk-user-id USER] [--admin] [--dev] [--json]
  veref admin keys create --tenant ID --recruiter ID --name NAME --env test|live [--scopes a,b] [--expires-at RFC3339] [--dev] [--json]
  veref admin keys list --tenant ID [--dev] [--json]
  veref admin keys revoke --tenant ID --id KEY_ID [--note TEXT] [--dev] [--json]

Clients (VEREF_API_KEY, VEREF_API_URL or --api-url):
  veref whoami [--json]
  veref candidates list|get|create …
  veref references list|get|start …
  veref ask "question" [--conversation ID] [--json]
  veref mcp            stdio MCP server forwarding to the API

Run 'veref <command> --help' for a command's flags.
`

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run is main without the process: tests start the real server through it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return usageError{}
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "admin":
		return cmdAdmin(ctx, args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		return runClient(ctx, args, getenv, stdin, stdout, stderr)
	}
}
