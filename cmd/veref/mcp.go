package main

import (
	"fmt"

	"github.com/spf13/cobra"

	vmcp "github.com/verefwork/veref/mcp"
)

const defaultAPIURL = "https://api.veref.work"

// mcpCmd runs `veref mcp`: a stdio MCP server for local clients (Claude
// Code, editors) that launch a command and cannot add an Authorization
// header, forwarding to a Veref server's MCP endpoint with the key from the
// environment. Stdout belongs to the protocol, so nothing else is written there.
func (c *cli) mcpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve MCP on stdin/stdout, forwarding to the Veref API",
		Long: `Serves MCP over stdin/stdout and forwards every request to the Veref API's
MCP endpoint (URL/v1/api/mcp), authenticated with $VEREF_API_KEY.

Example client configuration:
  {"command": "veref", "args": ["mcp"], "env": {"VEREF_API_KEY": "vrf_test_…"}}`,
		Args: exactArgs(0, "[--api-url URL]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, key, err := apiTarget(c.apiURL, c.getenv)
			if err != nil {
				return err
			}
			err = vmcp.ServeStdio(cmd.Context(), c.stdin, c.stdout, vmcp.Remote{BaseURL: base, APIKey: key, Version: version, Log: c.stderr})
			if err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			return nil
		},
	}
	c.apiURLFlag(cmd)
	return cmd
}
