"""Drives ehr-mcp with the official Python MCP SDK (`mcp` on PyPI) over stdio, WebSocket or Streamable HTTP.

Lists the tools, checks every tool's metadata, then calls every read tool and every write tool as a clinician
and, given admin credentials, the admin tools. The SDK validates each structuredContent against the tool's
outputSchema; this script also checks that content[0].text is the same object. Exit status 0 means every
check passed; the last line of output is a JSON summary. Run by the Rust integration tests (tests/it).
"""

import argparse
import asyncio
import datetime
import json
import random
import sys
from contextlib import asynccontextmanager

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.client.websocket import websocket_client

EXPECTED_TOOLS = {
    "authenticate", "register_client", "validate_token", "get_patient", "search_patients",
    "create_patient", "update_patient", "get_appointments", "schedule_appointment", "cancel_appointment",
    "search_providers", "get_provider", "get_medications", "prescribe_medication", "discontinue_medication",
    "get_lab_results", "order_lab", "get_vital_signs", "record_vital_signs", "get_allergies", "add_allergy",
    "get_patient_summary", "query_audit_log", "fhir_read", "fhir_search",
}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


@asynccontextmanager
async def connect(args):
    if args.transport == "stdio":
        env = dict(kv.split("=", 1) for kv in args.env)
        params = StdioServerParameters(command=args.command, args=["stdio"], env=env)
        async with stdio_client(params) as (read, write):
            yield read, write
    elif args.transport == "ws":
        async with websocket_client(args.url) as (read, write):
            yield read, write
    else:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
        async with streamablehttp_client(args.url, headers=headers) as (read, write, _session_id):
            yield read, write


class Caller:
    def __init__(self, session):
        self.session = session
        self.called = []

    async def ok(self, name, arguments):
        result = await self.session.call_tool(name, arguments)
        text = result.content[0].text if result.content else ""
        check(not result.isError, f"{name} failed: {text}")
        check(result.structuredContent is not None, f"{name}: no structuredContent")
        check(json.loads(text) == result.structuredContent, f"{name}: text and structuredContent differ")
        check(result.structuredContent.get("status") == "success", f"{name}: status is not success")
        self.called.append(name)
        return result.structuredContent

    async def fhir(self, name, arguments):
        """A FHIR tool: the resource (no earlier-system `status`) in structuredContent and as text."""
        result = await self.session.call_tool(name, arguments)
        text = result.content[0].text if result.content else ""
        check(not result.isError, f"{name} failed: {text}")
        check(result.structuredContent is not None, f"{name}: no structuredContent")
        check(json.loads(text) == result.structuredContent, f"{name}: text and structuredContent differ")
        self.called.append(name)
        return result.structuredContent

    async def error(self, name, arguments, code):
        result = await self.session.call_tool(name, arguments)
        check(result.isError, f"{name} should have failed with {code}")
        body = json.loads(result.content[0].text)
        check(body.get("status") == "error" and body.get("code") == code,
              f"{name}: expected error code {code}, got {body}")
        return body


# Listed only to a caller that may call them (or before the caller is known).
ADMIN_TOOLS = {"register_client", "query_audit_log"}


def check_tool_metadata(tools):
    names = {tool.name for tool in tools}
    check(EXPECTED_TOOLS - ADMIN_TOOLS <= names, f"missing tools: {sorted(EXPECTED_TOOLS - names)}")
    check(names <= EXPECTED_TOOLS, f"unexpected tools: {sorted(names - EXPECTED_TOOLS)}")
    for tool in tools:
        check(tool.title, f"{tool.name}: no title")
        check(tool.description and len(tool.description) > 30, f"{tool.name}: no useful description")
        check(tool.inputSchema.get("type") == "object", f"{tool.name}: input schema is not an object")
        check("access_token" in tool.inputSchema.get("properties", {}), f"{tool.name}: no access_token")
        check(tool.outputSchema and tool.outputSchema.get("type") == "object", f"{tool.name}: no output schema")
        hints = tool.annotations
        check(hints is not None and hints.readOnlyHint is not None and hints.destructiveHint is not None
              and hints.idempotentHint is not None, f"{tool.name}: missing annotations")


async def clinical_calls(caller):
    future = datetime.date.today() + datetime.timedelta(days=random.randint(400, 3000))
    hour = random.randint(8, 16)
    minute = random.choice(["00", "15", "30", "45"])
    found = await caller.ok("search_patients", {"search_term": "John"})
    check(found["count"] >= 1, "search for John found nobody")
    patient = await caller.ok("get_patient", {"mrn": "MRN001"})
    check(patient["patient"]["mrn"] == "MRN001", "get_patient returned another patient")
    await caller.ok("get_appointments", {"mrn": "MRN001"})
    await caller.ok("get_medications", {"mrn": "MRN001"})
    await caller.ok("get_vital_signs", {"mrn": "MRN001"})
    labs = await caller.ok("get_lab_results", {"mrn": "MRN001"})
    check(all(isinstance(lab["results"], list) for lab in labs["lab_results"]), "lab results not parsed")
    await caller.ok("get_allergies", {"mrn": "MRN002"})
    providers = await caller.ok("search_providers", {})
    check(providers["count"] >= 1, "no providers")
    npi = providers["providers"][0]["npi"]
    await caller.ok("get_provider", {"npi": npi})
    summary = await caller.ok("get_patient_summary", {"mrn": "MRN001"})
    check(summary["patient"]["mrn"] == "MRN001", "summary of another patient")
    resource = await caller.fhir("fhir_read", {"resource_type": "Patient", "id": "MRN001"})
    check(resource["resourceType"] == "Patient" and resource["id"] == "MRN001", "fhir_read: not MRN001")
    bundle = await caller.fhir("fhir_search", {
        "resource_type": "Observation", "params": {"patient": "MRN001", "category": "vital-signs"}})
    check(bundle["resourceType"] == "Bundle" and bundle["total"] >= 1, "fhir_search: no vital signs")

    created = await caller.ok("create_patient", {
        "first_name": "Ada", "last_name": "Sdkcheck", "dob": "1970-01-02", "gender": "female",
        "email": "ada@example.org", "phone": "+1-555-0199"})
    mrn = created["patient"]["mrn"]
    await caller.ok("update_patient", {"mrn": mrn, "city": "Boston"})
    booked = await caller.ok("schedule_appointment", {
        "mrn": mrn, "provider_npi": npi, "date": future.isoformat(), "time": f"{hour}:{minute}",
        "reason": "SDK check"})
    await caller.ok("cancel_appointment", {"mrn": mrn, "appointment_id": booked["appointment"]["appointment_id"]})
    prescribed = await caller.ok("prescribe_medication", {
        "mrn": mrn, "medication_name": "Metformin", "dosage": "500mg", "frequency": "Twice daily", "refills": 2})
    await caller.ok("discontinue_medication", {
        "mrn": mrn, "medication_id": prescribed["medication"]["medication_id"], "reason": "SDK check"})
    await caller.ok("add_allergy", {"mrn": mrn, "allergen": "Latex", "severity": "mild", "reaction": "Rash"})
    vitals = await caller.ok("record_vital_signs", {
        "mrn": mrn, "systolic_bp": 120, "diastolic_bp": 80, "heart_rate": 70, "temperature": 98.6,
        "respiratory_rate": 16, "oxygen_saturation": 98, "weight": 185, "height": 70})
    check(vitals["vital_signs"]["bmi"] == 26.5, "BMI not computed")
    await caller.ok("order_lab", {"mrn": mrn, "test_name": "Hemoglobin A1C"})
    await caller.error("get_patient", {"mrn": "MRN999999"}, "not_found")
    await caller.error("record_vital_signs", {"mrn": mrn, "heart_rate": 900}, "invalid_input")


async def admin_calls(caller, auth):
    audit = await caller.ok("query_audit_log", {**auth, "limit": 20})
    check(audit["count"] >= 1, "the audit log is empty")
    await caller.ok("register_client", {
        **auth, "app_id": "sdk-check", "app_name": "SDK check",
        "role": "nurse", "scopes": "read:patients read:vitals"})


async def run(args):
    async with connect(args) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = (await session.list_tools()).tools
            check_tool_metadata(tools)
            caller = Caller(session)
            if args.client_id:
                auth = await caller.ok("authenticate", {
                    "client_id": args.client_id, "client_secret": args.client_secret, "app_id": args.app_id})
                check(auth["token_type"] == "Bearer" and auth["access_token"], "authenticate gave no token")
            await caller.ok("validate_token", {})
            await clinical_calls(caller)
            if args.admin_token and args.transport == "http":
                # On /mcp the bearer token decides who calls (an access_token argument cannot override
                # it), so the admin tools go over a session opened with the admin's bearer.
                admin_args = argparse.Namespace(**{**vars(args), "token": args.admin_token})
                async with connect(admin_args) as (admin_read, admin_write):
                    async with ClientSession(admin_read, admin_write) as admin_session:
                        await admin_session.initialize()
                        admin = Caller(admin_session)
                        await admin_calls(admin, {})
                        caller.called.extend(admin.called)
            elif args.admin_token:
                await admin_calls(caller, {"access_token": args.admin_token})
            print(json.dumps({
                "transport": args.transport,
                "protocol_version": str(init.protocolVersion),
                "tools_listed": len(tools),
                "tools_called": sorted(set(caller.called)),
                "calls": len(caller.called),
            }))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "ws", "http"], required=True)
    parser.add_argument("--url")
    parser.add_argument("--command")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the stdio server")
    parser.add_argument("--token", help="bearer token for Streamable HTTP")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--app-id")
    parser.add_argument("--admin-token")
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except CheckFailed as failure:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
