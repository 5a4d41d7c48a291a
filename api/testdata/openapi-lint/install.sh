#!/usr/bin/env bash
# Installs the OpenAPI linters (@redocly/cli and @stoplight/spectral-cli,
# pinned in package-lock.json) that api/openapi_lint_test.go runs.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
