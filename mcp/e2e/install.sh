#!/bin/sh
# Installs the pinned MCP TypeScript SDK for TestOfficialTypeScriptClient.
# CI runs this before `go test`; with CI set, that test fails rather than
# skips when node_modules is missing.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
