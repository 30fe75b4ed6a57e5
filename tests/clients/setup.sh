#!/usr/bin/env bash
# Installs the official MCP client SDKs used by the integration tests:
#   - Python `mcp` into tests/clients/.venv
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

if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
else
    npm install --no-audit --no-fund --loglevel=error
fi
echo "MCP test clients installed in $here"
