"""Compression as real clients see it: Python `websockets` with permessage-deflate on, off and with
window-bit / context-takeover parameters, and the official Python MCP SDK over Streamable HTTP (httpx asks for
gzip). Exit status 0 means every check passed; the last line is a JSON summary. Run by tests/it/compression.rs.

Usage: compression_check.py WS_URL MCP_URL TOKEN on|off
"""

import asyncio
import json
import sys

import httpx
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared._httpx_utils import create_mcp_http_client


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def rpc(id_, method, params=None):
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


async def ws_session(url, token, **connect_args):
    """Initialises, calls get_patient_summary twice; returns (negotiated extension header, summary text)."""
    async with websockets.connect(
        url,
        subprotocols=["mcp"],
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=8 << 20,
        **connect_args,
    ) as ws:
        extension = ws.response.headers.get("Sec-WebSocket-Extensions")
        check(ws.subprotocol == "mcp", f"subprotocol {ws.subprotocol!r}")
        await ws.send(rpc(1, "initialize", {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "compression-check", "version": "1"},
        }))
        init = json.loads(await ws.recv())
        check("result" in init, f"initialize: {init}")
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        texts = []
        for id_ in (2, 3):
            await ws.send(rpc(id_, "tools/call", {
                "name": "get_patient_summary", "arguments": {"mrn": "MRN001"},
            }))
            reply = json.loads(await ws.recv())
            check(reply.get("id") == id_, f"reply id: {reply}")
            result = reply.get("result", {})
            check(not result.get("isError"), f"get_patient_summary failed: {reply}")
            texts.append(result["content"][0]["text"])
        check(texts[0] == texts[1], "the two summaries differ")
        # A large message from the client, compressed by websockets when deflate is on.
        await ws.send(rpc(4, "tools/call", {
            "name": "search_patients", "arguments": {"search_term": "Doe" + " " * 20000},
        }))
        reply = json.loads(await ws.recv())
        check(reply.get("id") == 4, f"large request: {reply}")
        return extension, texts[0]


async def sdk_over_http(url, token):
    encodings = []

    async def record(response):
        encodings.append(response.headers.get("content-encoding"))

    def factory(headers=None, timeout=None, auth=None):
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        client.event_hooks["response"].append(record)
        return client

    headers = {"Authorization": f"Bearer {token}"}
    async with streamablehttp_client(url, headers=headers, httpx_client_factory=factory) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("get_patient_summary", {"mrn": "MRN001"})
            check(not result.isError, f"get_patient_summary: {result}")
            text = result.content[0].text
    return encodings, text


async def main():
    ws_url, mcp_url, token, mode = sys.argv[1:5]
    summary = {}

    extension, deflated_text = await ws_session(ws_url, token, compression="deflate")
    summary["ws_deflate_extension"] = extension
    extension, plain_text = await ws_session(ws_url, token, compression=None)
    summary["ws_plain_extension"] = extension
    check(deflated_text == plain_text, "deflated and plain summaries differ")

    # Window bits and context takeover as the client asks for them; websockets inflates with the window it
    # asked the server to use, so a server ignoring server_max_window_bits fails here.
    factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=10,
        client_max_window_bits=True,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
    )
    extension, limited_text = await ws_session(ws_url, token, compression=None, extensions=[factory])
    summary["ws_limited_extension"] = extension
    check(limited_text == plain_text, "window-limited summary differs")

    if mode == "on":
        check(summary["ws_deflate_extension"] == "permessage-deflate",
              f"deflate answer: {summary['ws_deflate_extension']!r}")
        check(summary["ws_plain_extension"] is None, "an extension without an offer")
    else:
        check(all(summary[k] is None for k in ("ws_deflate_extension", "ws_limited_extension")),
              f"compression off but negotiated: {summary}")

    encodings, http_text = await sdk_over_http(mcp_url, token)
    summary["sdk_content_encodings"] = sorted({e for e in encodings if e})
    check(json.loads(http_text) == json.loads(plain_text), "HTTP and WebSocket summaries differ")
    if mode == "on":
        check("gzip" in summary["sdk_content_encodings"], f"no gzip answer: {encodings}")
    else:
        check(summary["sdk_content_encodings"] == [], f"compressed while off: {encodings}")
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except CheckFailed as failure:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
