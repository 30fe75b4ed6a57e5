#!/usr/bin/env bash
# Installs the official MCP client SDKs used by the integration tests:
#   - Python `mcp` 1.x into tests/clients/.venv (WebSocket and stdio clients; 2.x has no WebSocket client)
#   - Python `mcp` 2.x into tests/clients/.venv-mcp2 (protocol 2026-07-28; requirements-mcp2.txt)
#   - TypeScript `@modelcontextprotocol/sdk` into tests/clients/node_modules
# Safe to run repeatedly. Called by .ci/run before `cargo test`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
if [ ! -x .venv-mcp2/bin/python ]; then
    "$python" -m venv .venv-mcp2
fi
.venv-mcp2/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-mcp2.txt

if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
else
    npm install --no-audit --no-fund --loglevel=error
fi
echo "MCP test clients installed in $here"
