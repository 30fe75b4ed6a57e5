// Drives ehr-mcp's Streamable HTTP endpoint with the official TypeScript SDK (@modelcontextprotocol/sdk)
// and its OAuth 2.0 client-credentials provider: the first request gets HTTP 401, the SDK discovers the
// protected-resource and authorization-server metadata from the WWW-Authenticate header, fetches a token
// from our token endpoint and retries. Then it lists the tools and calls some (the SDK validates each
// structuredContent against the tool's outputSchema). Exit 0 means every check passed; the last line is a
// JSON summary. Usage: node ts_client_credentials.mjs URL CLIENT_ID CLIENT_SECRET
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, clientSecret] = process.argv.slice(2);
if (!url || !clientId || !clientSecret) {
  console.error('usage: node ts_client_credentials.mjs URL CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}

function check(condition, message) {
  if (!condition) {
    console.error(`CHECK FAILED: ${message}`);
    process.exit(1);
  }
}

const provider = new ClientCredentialsProvider({ clientId, clientSecret, clientName: 'ts-sdk-check' });
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
const client = new Client({ name: 'ts-sdk-check', version: '1.0.0' });
await client.connect(transport);
check(provider.tokens()?.access_token, 'no access token was obtained through the client-credentials flow');

const { tools } = await client.listTools();
// A doctor's token: every tool but the two admin tools (register_client, query_audit_log) is listed.
check(tools.length >= 21, `expected at least 21 tools, got ${tools.length}`);

const called = [];
async function ok(name, args) {
  const result = await client.callTool({ name, arguments: args });
  const text = result.content?.[0]?.text ?? '';
  check(!result.isError, `${name} failed: ${text}`);
  check(JSON.stringify(JSON.parse(text)) === JSON.stringify(result.structuredContent), `${name}: text differs`);
  called.push(name);
  return result.structuredContent;
}

const found = await ok('search_patients', { search_term: 'John' });
check(found.count >= 1, 'search for John found nobody');
await ok('get_patient', { mrn: 'MRN001' });
await ok('get_patient_summary', { mrn: 'MRN001' });
await ok('get_lab_results', { mrn: 'MRN001' });
await ok('get_allergies', { mrn: 'MRN002' });
const missing = await client.callTool({ name: 'get_patient', arguments: { mrn: 'MRN999999' } });
check(missing.isError, 'an unknown MRN should be a tool error');
check(JSON.parse(missing.content[0].text).code === 'not_found', 'unknown MRN is not not_found');

await client.close();
console.log(JSON.stringify({ transport: 'streamable_http', tools_listed: tools.length, tools_called: called }));
