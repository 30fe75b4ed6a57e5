// A person signs in through ehr-mcp's own login and consent pages in a real browser (headless Chromium,
// driven by Playwright), for two clients:
//  1. the official TypeScript MCP SDK with its OAuth client provider: 401 → protected-resource and
//     authorization-server discovery → dynamic client registration → PKCE → the browser signs the
//     doctor in and approves → finishAuth → tools/call;
//  2. a pre-registered confidential client: authorization code with PKCE by hand, the code redeemed with
//     client_secret_basic, a refresh (rotation), the spent refresh token refused, then tools/call.
// It also checks in the browser that the sign-in page cannot be framed. Exit 0 means every check passed;
// the last line is a JSON summary.
// Usage: node ts_oauth_browser.mjs BASE_URL DOCTOR_USER DOCTOR_PASSWORD NURSE_USER NURSE_PASSWORD
//        CONFIDENTIAL_CLIENT_ID CONFIDENTIAL_CLIENT_SECRET
// Environment: EHR_MCP_CHROMIUM (default /usr/bin/chromium); EHR_MCP_SCREENSHOT_DIR to save login.png
// and consent.png.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { chromium } from 'playwright-core';

const [base, doctor, doctorPassword, nurse, nursePassword, confidentialId, confidentialSecret] =
  process.argv.slice(2);
if (!confidentialSecret) {
  console.error('usage: node ts_oauth_browser.mjs BASE DOCTOR PASSWORD NURSE PASSWORD CLIENT_ID SECRET');
  process.exit(2);
}
const screenshots = process.env.EHR_MCP_SCREENSHOT_DIR;

function check(condition, message) {
  if (!condition) {
    console.error(`CHECK FAILED: ${message}`);
    process.exit(1);
  }
}

// The loopback redirect target (RFC 8252): captures each authorization response.
let onCallback = () => {};
let authorizationUrlToFrame = '';
const callbackServer = http.createServer((request, response) => {
  const url = new URL(request.url, 'http://127.0.0.1');
  if (url.pathname === '/frame') {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<!doctype html><iframe id="f" src="${authorizationUrlToFrame}" width="600" height="600"></iframe>`);
    return;
  }
  response.writeHead(200, { 'content-type': 'text/plain' });
  response.end('Signed in; you can close this window.');
  onCallback(url.searchParams);
});
await new Promise((resolve) => callbackServer.listen(0, '127.0.0.1', resolve));
const callbackBase = `http://127.0.0.1:${callbackServer.address().port}`;
const redirectUrl = `${callbackBase}/callback`;
const nextCallback = () => new Promise((resolve) => { onCallback = resolve; });

const browser = await chromium.launch({
  executablePath: process.env.EHR_MCP_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});

/** Signs `username` in at `authorizationUrl` in a fresh browser context and approves; returns the callback's parameters. */
async function signInAndApprove(authorizationUrl, username, password, shots) {
  const context = await browser.newContext({ viewport: { width: 720, height: 760 } });
  const page = await context.newPage();
  const external = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith(callbackBase)) external.push(url);
  });
  const callback = nextCallback();
  await page.goto(authorizationUrl);
  check(await page.locator('input[name="username"]').count() === 1, 'no username field on the login page');
  check(await page.locator('input[name="password"]').count() === 1, 'no password field on the login page');
  if (shots) await page.screenshot({ path: path.join(screenshots, 'login.png'), fullPage: true });
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  await page.waitForSelector('button[name="decision"][value="allow"]');
  const consentText = await page.textContent('main');
  check(consentText.includes('Allow'), 'the consent page does not ask');
  if (shots) await page.screenshot({ path: path.join(screenshots, 'consent.png'), fullPage: true });
  await page.click('button[name="decision"][value="allow"]');
  const params = await callback;
  check(external.length === 0, `the pages loaded something external: ${external.join(', ')}`);
  await context.close();
  return { params, consentText };
}

// ---- 1. The TypeScript SDK's OAuth client provider: DCR + PKCE + the browser ----
let pendingAuthorization;
const store = {};
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: 'TypeScript SDK browser check',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  state: () => 'sdk-state-1',
  clientInformation: () => store.client,
  saveClientInformation: (information) => { store.client = information; },
  tokens: () => store.tokens,
  saveTokens: (tokens) => { store.tokens = tokens; },
  redirectToAuthorization: (url) => { pendingAuthorization = url; },
  saveCodeVerifier: (verifier) => { store.verifier = verifier; },
  codeVerifier: () => store.verifier,
};
const mcpUrl = new URL(`${base}/mcp`);
let unauthorized = false;
try {
  await new Client({ name: 'browser-check', version: '1.0.0' })
    .connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
} catch (error) {
  unauthorized = error instanceof UnauthorizedError;
  if (!unauthorized) throw error;
}
check(unauthorized, 'the first connection was not refused with 401');
check(store.client?.client_id, 'the SDK did not register a client dynamically');
check(pendingAuthorization, 'the SDK did not start the authorization');
check(pendingAuthorization.searchParams.get('code_challenge_method') === 'S256', 'no S256 challenge');

// The sign-in page refuses to be framed (CSP frame-ancestors 'none', X-Frame-Options DENY).
authorizationUrlToFrame = pendingAuthorization.href;
{
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${callbackBase}/frame`);
  await page.waitForTimeout(1000);
  const frame = page.frames().find((candidate) => candidate !== page.mainFrame());
  let framedFields = 0;
  try {
    framedFields = frame ? await frame.locator('input[name="password"]').count() : 0;
  } catch {
    framedFields = 0;
  }
  check(framedFields === 0, 'the sign-in page rendered inside a frame');
  await context.close();
}

const { params: sdkCallback, consentText } = await signInAndApprove(
  pendingAuthorization.href, doctor, doctorPassword, Boolean(screenshots));
check(sdkCallback.get('state') === 'sdk-state-1', 'state did not come back');
check(sdkCallback.get('iss') === base, `iss is ${sdkCallback.get('iss')}, expected ${base}`);
check(consentText.includes('TypeScript SDK browser check'), 'the consent page does not name the application');
check(consentText.includes('127.0.0.1'), 'the consent page does not name the redirect host');
const sdkTransport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
await sdkTransport.finishAuth(sdkCallback.get('code'));
check(store.tokens?.access_token && store.tokens?.refresh_token, 'finishAuth got no tokens');
const sdkClient = new Client({ name: 'browser-check', version: '1.0.0' });
await sdkClient.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
const { tools } = await sdkClient.listTools();
const patient = await sdkClient.callTool({ name: 'get_patient', arguments: { mrn: 'MRN001' } });
check(!patient.isError, `get_patient failed: ${patient.content?.[0]?.text}`);
const summary = await sdkClient.callTool({ name: 'get_patient_summary', arguments: { mrn: 'MRN001' } });
check(!summary.isError, 'get_patient_summary failed');
await sdkClient.close();

// ---- 2. A pre-registered confidential client, with a refresh ----
const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');
const authorize = new URL(`${base}/oauth/authorize`);
for (const [name, value] of Object.entries({
  response_type: 'code', client_id: confidentialId, redirect_uri: redirectUrl, state: 'conf-state',
  code_challenge: challenge, code_challenge_method: 'S256', scope: 'read:patients read:vitals write:vitals',
  resource: `${base}/mcp`,
})) authorize.searchParams.set(name, value);
const { params: confidentialCallback } = await signInAndApprove(authorize.href, nurse, nursePassword, false);
check(confidentialCallback.get('state') === 'conf-state', 'state did not come back (confidential)');
const basic = `Basic ${Buffer.from(`${encodeURIComponent(confidentialId)}:${encodeURIComponent(confidentialSecret)}`).toString('base64')}`;
async function tokenRequest(form) {
  const response = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await response.json() };
}
const exchanged = await tokenRequest({
  grant_type: 'authorization_code', code: confidentialCallback.get('code'), redirect_uri: redirectUrl,
  code_verifier: verifier,
});
check(exchanged.status === 200, `code exchange failed: ${JSON.stringify(exchanged.body)}`);
check(exchanged.body.scope === 'read:patients read:vitals write:vitals', `scope ${exchanged.body.scope}`);
const refreshed = await tokenRequest({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token });
check(refreshed.status === 200, `refresh failed: ${JSON.stringify(refreshed.body)}`);
check(refreshed.body.refresh_token !== exchanged.body.refresh_token, 'the refresh token was not rotated');
const reused = await tokenRequest({ grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token });
check(reused.status === 400 && reused.body.error === 'invalid_grant', 'a spent refresh token was accepted');
const afterReuse = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token });
check(afterReuse.status === 400, 'reuse did not revoke the family');

// A second sign-in: the consent is remembered, the browser goes straight back with a code.
const again = new URL(authorize);
const reVerifier = randomBytes(32).toString('base64url');
again.searchParams.set('code_challenge', createHash('sha256').update(reVerifier).digest('base64url'));
const context = await browser.newContext();
const page = await context.newPage();
const callback = nextCallback();
await page.goto(again.href);
await page.fill('input[name="username"]', nurse);
await page.fill('input[name="password"]', nursePassword);
await page.click('button[type="submit"]');
const remembered = await callback;
check(remembered.get('code'), 'remembered consent did not return a code at once');
await context.close();
const second = await tokenRequest({
  grant_type: 'authorization_code', code: remembered.get('code'), redirect_uri: redirectUrl, code_verifier: reVerifier,
});
check(second.status === 200, 'the second code failed');

const nurseClient = new Client({ name: 'confidential-check', version: '1.0.0' });
await nurseClient.connect(new StreamableHTTPClientTransport(mcpUrl, {
  requestInit: { headers: { authorization: `Bearer ${second.body.access_token}` } },
}));
const vitals = await nurseClient.callTool({ name: 'get_vital_signs', arguments: { mrn: 'MRN001' } });
check(!vitals.isError, `get_vital_signs failed: ${vitals.content?.[0]?.text}`);
const prescribe = await nurseClient.callTool({
  name: 'prescribe_medication',
  arguments: { mrn: 'MRN001', medication_name: 'Aspirin', dosage: '81mg', frequency: 'Once daily' },
});
check(prescribe.isError && JSON.parse(prescribe.content[0].text).code === 'forbidden',
  `a nurse could prescribe: ${prescribe.content?.[0]?.text}`);
await nurseClient.close();

await browser.close();
callbackServer.close();
console.log(JSON.stringify({
  sdk: { client_id: store.client.client_id, tools_listed: tools.length, tools_called: ['get_patient', 'get_patient_summary'] },
  confidential: { refreshed: true, reuse_refused: true, remembered_consent: true, tools_called: ['get_vital_signs'] },
  screenshots: Boolean(screenshots),
}));
