//go:build tools

// Package clientgen pins the generator: an independent OpenAPI client
// generator (ogen) that api.TestGeneratedClient runs on Veref's spec.
package clientgen

import _ "github.com/ogen-go/ogen/cmd/ogen"
