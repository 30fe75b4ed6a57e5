// Drives ehr-mcp with the official TypeScript MCP SDK 2.x (@modelcontextprotocol/client, pinned in
// package.json) over Streamable HTTP at one protocol generation:
//   2026-07-28  versionNegotiation pinned to it: server/discover, then stateless requests with `_meta`
//               and the Mcp-Method/Mcp-Name headers, no initialize, no session
//   2025-11-25, 2024-11-05  the initialize handshake offering exactly that revision (supportedProtocolVersions)
// Lists and calls tools, lists and reads resources, lists and gets prompts, completes an MRN. Exit 0 when
// every check passed; the last line is a JSON summary. Run by tests/it/mcp_sdk_generations.rs.
//
// Usage: node ts_sdk2_check.mjs URL TOKEN PROTOCOL
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [url, token, protocol] = process.argv.slice(2);
const mrn = 'MRN001';

function check(condition, message) {
  if (!condition) {
    console.error(`CHECK FAILED: ${message}`);
    process.exit(1);
  }
}

const options =
  protocol === '2026-07-28'
    ? { versionNegotiation: { mode: { pin: '2026-07-28' } } }
    : { supportedProtocolVersions: [protocol] };
const client = new Client({ name: 'ehr-mcp-ts-sdk2-check', version: '1.0.0' }, options);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
await client.connect(transport);
const negotiated = client.getNegotiatedProtocolVersion();
check(negotiated === protocol, `negotiated ${negotiated}, expected ${protocol}`);

const { tools } = await client.listTools();
const patient = await client.callTool({ name: 'get_patient', arguments: { mrn } });
check(!patient.isError && patient.structuredContent.patient.mrn === mrn, `get_patient: ${JSON.stringify(patient)}`);

const { resources } = await client.listResources();
check(resources.some((r) => r.uri === 'ehr://providers'), `resources: ${JSON.stringify(resources)}`);
const { resourceTemplates } = await client.listResourceTemplates();
const summary = await client.readResource({ uri: `ehr://patients/${mrn}/summary.md` });
check(summary.contents[0].mimeType === 'text/markdown' && summary.contents[0].text.includes(mrn), 'summary.md');
const bundle = JSON.parse((await client.readResource({ uri: `ehr://patients/${mrn}/fhir` })).contents[0].text);
check(bundle.resourceType === 'Bundle', 'fhir bundle');

const { prompts } = await client.listPrompts();
const trend = await client.getPrompt({ name: 'lab_trend', arguments: { mrn } });
check(trend.messages[0].content.text.includes('Lab results of'), `lab_trend: ${JSON.stringify(trend)}`);
const completed = await client.complete({
  ref: { type: 'ref/resource', uri: 'ehr://patients/{mrn}/summary.md' },
  argument: { name: 'mrn', value: 'MRN00' },
});
check(completed.completion.values.includes(mrn), `completion: ${JSON.stringify(completed)}`);
await client.close();
console.log(
  JSON.stringify({
    protocol_version: negotiated,
    tools_listed: tools.length,
    templates_listed: resourceTemplates.length,
    prompts_listed: prompts.map((p) => p.name).sort(),
  }),
);
