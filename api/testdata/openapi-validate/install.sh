#!/usr/bin/env bash
# Installs the independent OpenAPI validator (@redocly/cli, pinned in
# package-lock.json) that api/golden_test.go runs. Needs only the npm registry.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
