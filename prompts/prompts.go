// Package prompts holds the text Veref gives to models: system prompts,
// server instructions and templates. They live in Markdown files embedded at
// build time so wording can be reviewed as prose, apart from the code.
package prompts

import _ "embed"

// MCPInstructions is sent as the instructions of Veref's MCP server
// (initialize result), telling a connected model what Veref is and how to
// use its tools safely.
//
//go:embed mcp_instructions.md
var MCPInstructions string
