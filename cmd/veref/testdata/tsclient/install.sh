#!/usr/bin/env bash
# Installs the TypeScript client generator and compiler (openapi-typescript,
# openapi-fetch, typescript; pinned in package-lock.json) that
# cmd/veref/clientgen_test.go's TestGeneratedTSClient runs.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
