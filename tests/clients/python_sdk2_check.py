"""Drives ehr-mcp with the official Python MCP SDK 2.x (`mcp` on PyPI, pinned in requirements-mcp2.txt) over
Streamable HTTP at one protocol generation:

  --protocol 2026-07-28   the stateless protocol: no initialize, no session, `_meta` on every request and
                          the Mcp-Method/Mcp-Name headers (the SDK's `mode="2026-07-28"`)
  --protocol 2025-11-25   the initialize handshake at the SDK's newest handshake version (`mode="legacy"`)
  --protocol 2024-11-05   the handshake at the oldest revision (the SDK's own handshake, its proposed
                          version set to 2024-11-05)

Lists and calls tools, lists resources and templates, reads the patient summary as Markdown and as a FHIR
Bundle, lists prompts and gets one, completes an MRN. Exit status 0 when every check passed; the last line
of output is a JSON summary. Run by the Rust integration tests (tests/it/mcp_sdk_generations.rs).
"""

import argparse
import asyncio
import json
import sys

import httpx2
import mcp.client.session as client_session
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference, ResourceTemplateReference


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


async def run(args):
    if args.protocol == "2024-11-05":
        # The SDK's handshake, proposing the oldest revision instead of its newest one.
        client_session.LATEST_HANDSHAKE_VERSION = "2024-11-05"
    mode = "2026-07-28" if args.protocol == "2026-07-28" else "legacy"
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {args.token}"}, timeout=60)
    transport = streamable_http_client(args.url, http_client=http)
    async with Client(transport, mode=mode, raise_exceptions=True) as client:
        check(client.protocol_version == args.protocol,
              f"negotiated {client.protocol_version}, expected {args.protocol}")

        tools = (await client.list_tools()).tools
        check(len(tools) >= 20, f"only {len(tools)} tools listed")
        patient = await client.call_tool("get_patient", {"mrn": args.mrn})
        check(not patient.is_error and patient.structured_content["patient"]["mrn"] == args.mrn,
              f"get_patient failed: {patient}")
        compact = await client.call_tool("get_medications", {"mrn": args.mrn, "fields": ["medication_id", "name"]})
        check(not compact.is_error, f"get_medications with fields failed: {compact}")
        items = compact.structured_content["medications"]
        check(all(set(item) <= {"medication_id", "name"} for item in items), f"fields ignored: {items}")

        resources = (await client.list_resources()).resources
        uris = {str(resource.uri) for resource in resources}
        check("ehr://providers" in uris, f"no provider directory in {uris}")
        templates = (await client.list_resource_templates()).resource_templates
        template_uris = {template.uri_template for template in templates}
        check("ehr://patients/{mrn}/summary.md" in template_uris, f"templates: {template_uris}")

        markdown = (await client.read_resource(f"ehr://patients/{args.mrn}/summary.md")).contents[0]
        check(markdown.mime_type == "text/markdown", f"summary mime type {markdown.mime_type}")
        check(markdown.text.startswith("# ") and args.mrn in markdown.text, f"summary: {markdown.text[:200]}")
        bundle = json.loads((await client.read_resource(f"ehr://patients/{args.mrn}/fhir")).contents[0].text)
        check(bundle["resourceType"] == "Bundle" and bundle["type"] == "collection", "not a FHIR Bundle")
        check(any(entry["resource"]["resourceType"] == "Patient" for entry in bundle.get("entry", [])),
              "no Patient in the bundle")

        prompts = {prompt.name: prompt for prompt in (await client.list_prompts()).prompts}
        check({"medication_review", "pre_visit_summary", "lab_trend", "discharge_checklist"} <= set(prompts),
              f"prompts: {sorted(prompts)}")
        check(prompts["lab_trend"].arguments[0].name == "mrn" and prompts["lab_trend"].arguments[0].required,
              "lab_trend has no required mrn argument")
        review = await client.get_prompt("medication_review", {"mrn": args.mrn})
        text = review.messages[0].content.text
        check(review.messages[0].role == "user" and args.mrn in text and "## Active medications" in text,
              f"medication_review: {text[:300]}")

        completed = await client.complete(
            PromptReference(type="ref/prompt", name="medication_review"), {"name": "mrn", "value": args.mrn[:4]})
        check(args.mrn in completed.completion.values, f"completion: {completed.completion.values}")
        by_template = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="ehr://patients/{mrn}/summary.md"),
            {"name": "mrn", "value": args.mrn})
        check(by_template.completion.values == [args.mrn], f"template completion: {by_template.completion.values}")

        print(json.dumps({
            "protocol_version": client.protocol_version,
            "tools_listed": len(tools),
            "resources_listed": sorted(uris),
            "templates_listed": len(templates),
            "prompts_listed": sorted(prompts),
            "bundle_entries": len(bundle.get("entry", [])),
        }))
    await http.aclose()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--protocol", choices=["2026-07-28", "2025-11-25", "2024-11-05"], required=True)
    parser.add_argument("--mrn", default="MRN001")
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except CheckFailed as failure:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
