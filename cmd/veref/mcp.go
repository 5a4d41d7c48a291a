package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	vmcp "github.com/verefwork/veref/mcp"
)

const defaultAPIURL = "https://api.veref.work"

// cmdMCP runs `veref mcp`: a stdio MCP server for local clients (Claude
// Code, editors) that launch a command and cannot add an Authorization
// header, forwarding to a Veref server's MCP endpoint with the key from the
// environment. Stdout belongs to the protocol, so nothing else is written there.
func cmdMCP(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: veref mcp [--api-url URL]

Serves MCP over stdin/stdout and forwards every request to the Veref API's
MCP endpoint (URL/v1/api/mcp), authenticated with $VEREF_API_KEY.

Example client configuration:
  {"command": "veref", "args": ["mcp"], "env": {"VEREF_API_KEY": "vrf_test_…"}}

Flags:
`)
		fs.PrintDefaults()
	}
	apiURL := fs.String("api-url", "", "Veref API base URL (default $VEREF_API_URL or "+defaultAPIURL+")")
	if err := fs.Parse(args); err != nil {
		return usageError{}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("veref mcp takes no arguments, got %q", fs.Args())}
	}
	base, key, err := apiTarget(*apiURL, getenv)
	if err != nil {
		return err
	}
	err = vmcp.ServeStdio(ctx, stdin, stdout, vmcp.Remote{BaseURL: base, APIKey: key, Version: version, Log: stderr})
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	return nil
}
