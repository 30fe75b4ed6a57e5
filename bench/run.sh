#!/usr/bin/env bash
# One command for the throughput figures of BENCHMARKS.md: builds the release binary, the load generator
# and the bare echo; seeds a synthetic database (once, kept in $BENCH_DIR); registers a doctor client
# with a high rate limit; starts `ehr-mcp serve` and the echo; runs the load generator against both in
# the same run and prints every figure. Usage:
#   bench/run.sh                          # SQLite, 100,000 patients, the default scenarios
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench bench/run.sh
#   BENCH_SCENARIOS="ws:64 echo:64" BENCH_SECONDS=10 bench/run.sh
#   BENCH_IMPORT=tests/fixtures/seed_export.json BENCH_DATABASE_URL=sqlite://target/bench/seed.db BENCH_SCENARIOS=search:64 bench/run.sh
# Scenarios: ws:N, echo:N, http:N (sessions), stateless:N, search:N, fhir:N, everything:N (N connections),
# idle:N (N authenticated WebSockets held open; the server's RSS is printed), compression:N (HTTP and
# FHIR answers with none/gzip/br/zstd, WebSocket with and without permessage-deflate).
set -euo pipefail
cd "$(dirname "$0")/.."

bench_dir="${BENCH_DIR:-target/bench}"
patients="${BENCH_PATIENTS:-100000}"
seconds="${BENCH_SECONDS:-10}"
scenarios="${BENCH_SCENARIOS:-echo:1 ws:1 echo:16 ws:16 echo:64 ws:64 http:64 stateless:64 search:64}"
port="${BENCH_PORT:-7790}"
echo_port=$((port + 1))
mkdir -p "$bench_dir"
database_url="${BENCH_DATABASE_URL:-sqlite://$bench_dir/synthetic-$patients.db}"

profile="${BENCH_PROFILE:-release}"
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --profile "$profile" --quiet --bin ehr-mcp --example loadgen --example echo
bin="${BENCH_BIN:-target/$profile/ehr-mcp}"
loadgen=target/$profile/examples/loadgen
export EHR_MCP_KEY_ENCRYPTION_KEY="${EHR_MCP_KEY_ENCRYPTION_KEY:-$(cat "$bench_dir/kek" 2>/dev/null || "$bin" keys generate-kek | tee "$bench_dir/kek")}"
export DATABASE_URL="$database_url" LOG_LEVEL="${LOG_LEVEL:-info}"

marker="$bench_dir/seeded-$(echo "$database_url" | tr -c 'a-zA-Z0-9' _)"
if [ ! -f "$marker" ]; then
    echo "[bench] seeding $patients synthetic patients into $database_url"
    "$bin" migrate
    if [ -n "${BENCH_IMPORT:-}" ]; then
        "$bin" import "$BENCH_IMPORT"
    else
        /usr/bin/time -f "[bench] seed: %e s wall, %U s user, %S s sys, %M KB peak RSS" \
            "$bin" seed --synthetic "$patients"
    fi
    touch "$marker"
fi
credentials="$bench_dir/credentials-$(basename "$marker").json"
if [ ! -f "$credentials" ]; then
    "$bin" client register --app-id "bench-$(date +%s)" --app-name "Benchmark" --role doctor \
        --scopes "read:patients read:appointments read:medications read:labs read:vitals read:allergies read:providers" \
        --rate-limit 100000000 | tee "$credentials.one"
    python3 -c 'import json,sys; print(json.dumps([json.load(open(sys.argv[1]))]))' "$credentials.one" >"$credentials"
fi
client_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["client_id"])' "$credentials")

ulimit -n 65536 2>/dev/null || true
started_ns=$(date +%s%N)
# Connection limits raised for the idle-connections scenario (one load generator address).
"$bin" serve --port "$port" --max-connections 20000 --max-connections-per-address 20000 \
    ${BENCH_SERVE_ARGS:-} >"$bench_dir/serve.log" 2>&1 &
server=$!
target/$profile/examples/echo --port "$echo_port" >/dev/null &
echo_server=$!
trap 'kill $server $echo_server 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 1 1000); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.01
done
echo "[bench] start to first ready answer (/readyz 200): $(( ($(date +%s%N) - started_ns) / 1000000 )) ms"
echo "[bench] server pid $server idle RSS: $(ps -o rss= -p "$server") KB"

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}

run() {
    echo "[bench] $*"
    local before after output calls
    before=$(cpu_seconds "$server")
    output=$("$loadgen" --seconds "$seconds" "$@")
    after=$(cpu_seconds "$server")
    echo "$output" | sed 's/^/    /'
    calls=$(echo "$output" | sed -n 's/.*calls_ok=\([0-9]*\).*/\1/p')
    if [ "${1:-}" != "--url" ] || [ "${2:-}" = "http://127.0.0.1:$port" ]; then
        echo "    server CPU per call: $(awk -v a="$after" -v b="$before" -v n="$calls" 'BEGIN { if (n > 0) printf "%.1f", (a - b) * 1e6 / n; else print "-" }') us"
    fi
}
common=(--url "http://127.0.0.1:$port" --credentials "$credentials" --client-id "$client_id")
for scenario in $scenarios; do
    kind="${scenario%%:*}"
    connections="${scenario##*:}"
    case "$kind" in
        echo) run --url "http://127.0.0.1:$echo_port" --no-auth --transport ws --connections "$connections" --mrns "$patients" ;;
        ws) run "${common[@]}" --transport ws --connections "$connections" --mrns "$patients" ;;
        http) run "${common[@]}" --transport http --connections "$connections" --mrns "$patients" ;;
        stateless) run "${common[@]}" --transport http --stateless --connections "$connections" --mrns "$patients" ;;
        search) run "${common[@]}" --transport ws --connections "$connections" --tool search_patients --arguments '{"search_term":"john"}' ;;
        fhir) run "${common[@]}" --transport fhir --connections "$connections" --mrns "$patients" --path 'Patient/{mrn}' ;;
        idle)
            echo "[bench] $connections idle authenticated WebSockets"
            "$loadgen" "${common[@]}" --transport ws --hold --connections "$connections" --seconds 30 --mrns "$patients" | sed 's/^/    /' &
            sleep 25
            echo "    server RSS with $connections idle WebSockets open: $(ps -o rss= -p "$server") KB"
            wait %%
            ;;
        compression)
            # Bytes on the wire and calls/s with and without compression (get_patient_summary, $everything).
            for encoding in none gzip br zstd; do
                run "${common[@]}" --transport http --connections "$connections" --mrns "$patients" \
                    --tool get_patient_summary --compression "$encoding"
                run "${common[@]}" --transport fhir --connections "$connections" --mrns "$patients" \
                    --path 'Patient/{mrn}/$everything' --compression "$encoding"
            done
            echo "[bench] WebSocket get_patient_summary without and with permessage-deflate (Python websockets, 1 connection)"
            tests/clients/.venv/bin/python bench/ws_compression.py "http://127.0.0.1:$port" "$credentials" \
                "$client_id" 2000 SYN00000042 | sed 's/^/    /'
            ;;
        everything) run "${common[@]}" --transport fhir --connections "$connections" --mrns "$patients" --path 'Patient/{mrn}/$everything' ;;
        *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
    echo "    server RSS: $(ps -o rss= -p "$server") KB"
done
