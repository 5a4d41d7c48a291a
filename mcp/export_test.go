package mcp

import "net/http"

// ViaMCPGo is h with every message sent through mcp-go's transport, the
// reference the direct path is compared against.
func ViaMCPGo(h http.Handler) http.Handler {
	c := *h.(*handler)
	c.noDirect = true
	return &c
}
