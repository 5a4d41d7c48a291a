package prompts

import _ "embed"

// AgentSystem is the system prompt of Ask Veref. It lives in a Markdown file
// so it can be reviewed and edited as prose, not as a Go string.
//
//go:embed agent_system.md
var AgentSystem string
