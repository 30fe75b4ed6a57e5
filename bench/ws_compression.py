"""WebSocket bytes on the wire and calls/s with and without permessage-deflate, with Python `websockets` (the
Rust load generator's tungstenite client has no deflate). Reads the server's `ehr_mcp_wire_bytes_total` and
`ehr_mcp_uncompressed_bytes_total` before and after, so the byte figures are the server's own counts.

Usage: tests/clients/.venv/bin/python bench/ws_compression.py BASE_URL CREDENTIALS_FILE [CLIENT_ID] [CALLS] [MRN]
(one connection per mode, one call in flight: the calls/s are a Python client's, a lower bound).
"""

import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request

import websockets


def metrics(base):
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("ehr_mcp_wire_bytes_total") or line.startswith("ehr_mcp_uncompressed_bytes_total"):
            name, value = line.rsplit(" ", 1)
            if 'transport="websocket"' in name and 'direction="out"' in name:
                values[name.split("{")[0]] = float(value)
    return values


def token(base, credentials, client_id):
    entry = next(c for c in json.load(open(credentials)) if c["client_id"] == client_id)
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": entry["client_secret"],
    }).encode()
    return json.load(urllib.request.urlopen(f"{base}/oauth/token", body))["access_token"]


async def run(base, bearer, compression, calls, mrn):
    url = base.replace("http", "ws", 1) + "/ws"
    async with websockets.connect(url, subprotocols=["mcp"], compression=compression,
                                  additional_headers={"Authorization": f"Bearer {bearer}"},
                                  max_size=16 << 20) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}))
        await ws.recv()
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        mid = metrics(base)
        started = time.perf_counter()
        for id_ in range(1, calls + 1):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {
                "name": "get_patient_summary", "arguments": {"mrn": mrn}}}))
            reply = json.loads(await ws.recv())
            assert not reply["result"].get("isError"), reply
        elapsed = time.perf_counter() - started
    after = metrics(base)
    wire = after["ehr_mcp_wire_bytes_total"] - mid.get("ehr_mcp_wire_bytes_total", 0)
    plain = after["ehr_mcp_uncompressed_bytes_total"] - mid.get("ehr_mcp_uncompressed_bytes_total", 0)
    return {"compression": compression or "none", "calls": calls, "calls_per_s": round(calls / elapsed),
            "wire_bytes_per_answer": round(wire / calls), "uncompressed_bytes_per_answer": round(plain / calls)}


async def main():
    base, credentials = sys.argv[1], sys.argv[2]
    client_id = sys.argv[3] if len(sys.argv) > 3 else "copilot-studio"
    calls = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    mrn = sys.argv[5] if len(sys.argv) > 5 else "MRN001"
    bearer = token(base, credentials, client_id)
    for compression in (None, "deflate"):
        print(json.dumps(await run(base, bearer, compression, calls, mrn)))


asyncio.run(main())
