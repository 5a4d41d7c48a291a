#!/bin/sh
# Installs the pinned MCP conformance suite and the Node 22 it needs, for
# TestOfficialConformanceScenarios. With CI set that test fails rather than
# skips when they are missing.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
