//go:build tools

// Package clientgen pins the generator: an independent OpenAPI client
// generator (ogen) that TestGeneratedGoClient in cmd/veref runs on the
// document a `veref serve --dev` serves.
package clientgen

import _ "github.com/ogen-go/ogen/cmd/ogen"
