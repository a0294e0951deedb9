// Self-test of oidc-provider.mjs: node selftest.mjs
//
// Generates throw-away keys and a self-signed certificate (openssl) in a temp dir, starts
// the provider twice (an EC P-256 first key, then an RSA first key) and checks discovery,
// JWKS, client_credentials JWT access tokens, the authorization code flow with PKCE through
// the devInteractions login and consent forms (plain HTTP requests, manual cookies), the
// ID token claims, RP-initiated logout, and exit on stdin EOF / SIGTERM.
// Ends with a line "N passed, N failed"; exit code 1 on any failure. SELFTEST_DUMP=1 prints
// the first ID token and access token payloads to stderr.

import { execFileSync, spawn } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'raccordo-oidc-selftest-'));
const AUDIENCE = 'https://raccordo.test/api';
const REDIRECT = 'https://127.0.0.1:1234/console/callback';
const POST_LOGOUT = 'https://127.0.0.1:1234/console/';

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---- keys and certificate ----------------------------------------------------------
function openssl(args, input) {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'ignore'] });
}
const ecKey = openssl(['pkcs8', '-topk8', '-nocrypt'], openssl(['ecparam', '-genkey', '-name', 'prime256v1']));
writeFileSync(join(dir, 'k1.pem'), ecKey);
openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'k2.pem')]);
openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.pem'), '-days', '2',
  '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
const CA = readFileSync(join(dir, 'server.pem'));

function writeConfig(name, keys) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') },
    keys,
    audience: AUDIENCE,
    access_token_ttl: 300,
    roles_claim: 'roles',
    accounts: {
      analista: { name: 'Anna Analista', roles: ['analyst'] },
      dpo: { name: 'Dario Dpo', roles: ['dpo'] },
    },
    clients: [
      { client_id: 'raccordo-console', client_secret: 's3cret', redirect_uris: [REDIRECT], post_logout_redirect_uris: [POST_LOGOUT], grant_types: ['authorization_code'] },
      { client_id: 'analyst-tool', client_secret: 's3cret2', grant_types: ['client_credentials'], roles: ['analyst'] },
    ],
  }, null, 2));
  return path;
}

// ---- HTTP helpers (the test CA trusted for these requests only) ----------------------
function http(method, url, { headers = {}, form, auth, jar } = {}) {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const h = { ...headers };
  if (body !== undefined) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    h['content-length'] = Buffer.byteLength(body);
  }
  if (auth) h.authorization = `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString('base64')}`;
  if (jar && jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: h, ca: CA }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        for (const sc of res.headers['set-cookie'] ?? []) {
          const [pair, ...attrs] = sc.split(';');
          const eq = pair.indexOf('=');
          const name = pair.slice(0, eq).trim();
          const value = pair.slice(eq + 1).trim();
          const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
          if (jar) {
            if (expired || value === '') jar.delete(name);
            else jar.set(name, value);
          }
          (res.cookieAttrs ??= {})[name] = attrs.map((a) => a.trim().toLowerCase());
        }
        resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), cookieAttrs: res.cookieAttrs ?? {} });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

function verifyJwt(jwt, jwks) {
  const t = decodeJwt(jwt);
  const jwk = jwks.keys.find((k) => k.kid === t.header.kid);
  if (!jwk) return false;
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const hash = { ES256: 'sha256', RS256: 'sha256' }[t.header.alg];
  if (!hash) return false;
  return verify(hash, Buffer.from(t.signingInput), t.header.alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' } : key, t.signature);
}

function formOf(html) {
  const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
  const fields = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]] = m[2];
  return { action: action?.replace(/&amp;/g, '&'), fields };
}

// ---- provider process ---------------------------------------------------------------
async function startProvider(configPath) {
  const child = spawn(process.execPath, [join(here, 'oidc-provider.mjs'), configPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  let stdout = '';
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`provider did not start in 15 s; stderr:\n${stderr}`)), 15000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(stdout.slice(0, nl)).issuer);
      }
    });
    child.on('exit', (code) => reject(new Error(`provider exited with ${code}; stderr:\n${stderr}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, issuer, exited, stdout: () => stdout, stderr: () => stderr };
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve('timeout'), ms))]);
}

// Authorization code flow with PKCE, as a browser would do it, but with plain requests.
async function codeFlow(issuer, login, jar = new Map()) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const nonce = randomBytes(8).toString('hex');
  const auth = new URL('/auth', issuer);
  auth.search = new URLSearchParams({
    client_id: 'raccordo-console', response_type: 'code', redirect_uri: REDIRECT,
    scope: 'openid profile roles api', state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  const steps = [];
  let res = await http('GET', auth, { jar });
  let location = res.headers.location;
  let consentShown = false;
  let loginShown = false;
  for (let i = 0; i < 10 && location && !location.startsWith(REDIRECT); i += 1) {
    const url = new URL(location, issuer);
    steps.push(url.pathname);
    if (url.pathname.startsWith('/interaction/')) {
      const page = await http('GET', url, { jar });
      const form = formOf(page.text);
      if (form.fields.prompt === 'login') {
        loginShown = true;
        if (!/name="login"/.test(page.text) || !/name="password"/.test(page.text)) throw new Error('login form fields missing');
        res = await http('POST', new URL(form.action, issuer), { jar, form: { ...form.fields, login, password: 'test' } });
      } else if (form.fields.prompt === 'consent') {
        consentShown = true;
        res = await http('POST', new URL(form.action, issuer), { jar, form: form.fields });
      } else {
        throw new Error(`unexpected interaction page: ${page.status} ${page.text.slice(0, 300)}`);
      }
    } else {
      res = await http('GET', url, { jar });
    }
    location = res.headers.location;
  }
  if (!location?.startsWith(REDIRECT)) throw new Error(`flow did not come back to the client: ${res.status} ${location} ${res.text.slice(0, 300)}`);
  const cb = new URL(location);
  if (cb.searchParams.get('error')) throw new Error(`authorization error: ${cb.search}`);
  const token = await http('POST', new URL('/token', issuer), {
    auth: ['raccordo-console', 's3cret'],
    form: { grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: REDIRECT, code_verifier: verifier },
  });
  return { callback: cb, state, nonce, token: JSON.parse(token.text), tokenStatus: token.status, steps, consentShown, loginShown, jar, firstAuth: auth };
}

// ---- run ----------------------------------------------------------------------------
async function main() {
  // 1. EC P-256 first key (k1), RSA second (k2).
  const p = await startProvider(writeConfig('ec.json', [{ kid: 'k1', pem: join(dir, 'k1.pem') }, { kid: 'k2', pem: join(dir, 'k2.pem') }]));
  const { issuer } = p;
  try {
    check('ready line is the issuer', /^https:\/\/127\.0\.0\.1:\d+$/.test(issuer) && same(p.stdout(), `${JSON.stringify({ issuer })}\n`), p.stdout());

    const disco = JSON.parse((await http('GET', new URL('/.well-known/openid-configuration', issuer))).text);
    check('discovery issuer', disco.issuer === issuer, disco.issuer);
    check('discovery endpoints', disco.token_endpoint === `${issuer}/token` && disco.authorization_endpoint === `${issuer}/auth` && disco.end_session_endpoint === `${issuer}/session/end`, disco);
    check('discovery scopes', ['openid', 'profile', 'roles', 'api'].every((s) => disco.scopes_supported.includes(s)), disco.scopes_supported);
    check('discovery grant types', disco.grant_types_supported.includes('client_credentials') && disco.grant_types_supported.includes('authorization_code'), disco.grant_types_supported);
    check('discovery id token algs include ES256', disco.id_token_signing_alg_values_supported.includes('ES256'), disco.id_token_signing_alg_values_supported);
    check('discovery PKCE S256', same(disco.code_challenge_methods_supported, ['S256']), disco.code_challenge_methods_supported);

    const jwks = JSON.parse((await http('GET', disco.jwks_uri)).text);
    check('jwks lists k1 then k2', same(jwks.keys.map((k) => [k.kid, k.alg, k.use]), [['k1', 'ES256', 'sig'], ['k2', 'RS256', 'sig']]), jwks.keys.map((k) => k.kid));
    check('jwks has no private parts', jwks.keys.every((k) => !('d' in k) && !('p' in k)), '');

    // client_credentials without a resource parameter
    const cc = await http('POST', disco.token_endpoint, { auth: ['analyst-tool', 's3cret2'], form: { grant_type: 'client_credentials', scope: 'api' } });
    const ccBody = JSON.parse(cc.text);
    check('client_credentials 200', cc.status === 200, cc.text);
    const at = decodeJwt(ccBody.access_token);
    check('cc access token header', same(at.header, { alg: 'ES256', typ: 'at+jwt', kid: 'k1' }), at.header);
    check('cc access token claims', at.payload.iss === issuer && at.payload.aud === AUDIENCE && same(at.payload.roles, ['analyst'])
      && at.payload.client_id === 'analyst-tool' && at.payload.sub === 'analyst-tool' && at.payload.scope === 'api'
      && at.payload.exp - at.payload.iat === 300, at.payload);
    check('cc access token signature', verifyJwt(ccBody.access_token, jwks));
    check('cc token response', ccBody.token_type === 'Bearer' && ccBody.expires_in === 300 && ccBody.scope === 'api', ccBody);

    const ccRes = await http('POST', disco.token_endpoint, { auth: ['analyst-tool', 's3cret2'], form: { grant_type: 'client_credentials', scope: 'api', resource: AUDIENCE } });
    check('cc with explicit resource', ccRes.status === 200 && decodeJwt(JSON.parse(ccRes.text).access_token).payload.aud === AUDIENCE, ccRes.text);
    const ccNoScope = await http('POST', disco.token_endpoint, { auth: ['analyst-tool', 's3cret2'], form: { grant_type: 'client_credentials' } });
    check('cc without scope still a JWT for the audience', ccNoScope.status === 200 && decodeJwt(JSON.parse(ccNoScope.text).access_token).payload.aud === AUDIENCE, ccNoScope.text);
    const ccOther = await http('POST', disco.token_endpoint, { auth: ['analyst-tool', 's3cret2'], form: { grant_type: 'client_credentials', resource: 'https://other.test/' } });
    check('cc for another resource rejected', ccOther.status === 400 && JSON.parse(ccOther.text).error === 'invalid_target', ccOther.text);
    const ccBad = await http('POST', disco.token_endpoint, { auth: ['analyst-tool', 'wrong'], form: { grant_type: 'client_credentials', scope: 'api' } });
    check('cc wrong secret 401', ccBad.status === 401, ccBad.text);
    const ccConsole = await http('POST', disco.token_endpoint, { auth: ['raccordo-console', 's3cret'], form: { grant_type: 'client_credentials', scope: 'api' } });
    check('cc not allowed for the console client', ccConsole.status === 400, ccConsole.text);

    // /auth without PKCE is refused (redirect back with an error)
    const noPkce = new URL('/auth', issuer);
    noPkce.search = new URLSearchParams({ client_id: 'raccordo-console', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'x' }).toString();
    const np = await http('GET', noPkce);
    const npLoc = np.headers.location ? new URL(np.headers.location) : undefined;
    check('auth without PKCE refused', np.status === 303 && npLoc?.href.startsWith(REDIRECT) && npLoc.searchParams.get('error') === 'invalid_request', np.headers.location);
    const badRedirect = new URL(noPkce);
    badRedirect.searchParams.set('redirect_uri', 'https://evil.test/cb');
    const br = await http('GET', badRedirect);
    check('auth with unregistered redirect_uri refused', br.status === 400 && !br.headers.location, br.status);

    // Authorization code flow, first login: login + consent pages
    const flow = await codeFlow(issuer, 'analista');
    if (process.env.SELFTEST_DUMP) console.error(JSON.stringify({ id: decodeJwt(flow.token.id_token).payload, at: decodeJwt(flow.token.access_token).payload, resp: Object.keys(flow.token), steps: flow.steps }, null, 1));
    check('code flow: /auth redirects to /interaction/', flow.steps[0]?.startsWith('/interaction/'), flow.steps);
    check('code flow: login and consent shown', flow.loginShown && flow.consentShown, flow.steps);
    check('code flow: callback state and iss', flow.callback.searchParams.get('state') === flow.state && flow.callback.searchParams.get('iss') === issuer, flow.callback.href);
    check('code flow: token 200', flow.tokenStatus === 200 && flow.token.token_type === 'Bearer', flow.token);
    const idt = decodeJwt(flow.token.id_token);
    check('id token header', idt.header.alg === 'ES256' && idt.header.kid === 'k1', idt.header);
    check('id token claims', idt.payload.iss === issuer && idt.payload.aud === 'raccordo-console' && idt.payload.sub === 'analista'
      && idt.payload.name === 'Anna Analista' && same(idt.payload.roles, ['analyst']) && idt.payload.nonce === flow.nonce, idt.payload);
    check('id token signature', verifyJwt(flow.token.id_token, jwks));
    const uat = decodeJwt(flow.token.access_token);
    check('user access token header', same(uat.header, { alg: 'ES256', typ: 'at+jwt', kid: 'k1' }), uat.header);
    check('user access token claims', uat.payload.iss === issuer && uat.payload.aud === AUDIENCE && uat.payload.sub === 'analista'
      && same(uat.payload.roles, ['analyst']) && uat.payload.client_id === 'raccordo-console' && uat.payload.scope === 'api', uat.payload);
    check('user access token signature', verifyJwt(flow.token.access_token, jwks));
    check('code flow: no refresh token', flow.token.refresh_token === undefined, flow.token);

    // Same browser session again: no login, no consent
    const again = await codeFlow(issuer, 'analista', flow.jar);
    check('second authorization in the session: no login, no consent', !again.loginShown && !again.consentShown && again.tokenStatus === 200, again.steps);

    // Other accounts
    const dpo = await codeFlow(issuer, 'dpo');
    const dpoId = decodeJwt(dpo.token.id_token).payload;
    check('dpo id token roles', same(dpoId.roles, ['dpo']) && dpoId.name === 'Dario Dpo', dpoId);
    check('dpo access token roles', same(decodeJwt(dpo.token.access_token).payload.roles, ['dpo']), '');
    const stranger = await codeFlow(issuer, 'mallory');
    const strId = decodeJwt(stranger.token.id_token).payload;
    check('unknown login: no roles, name = login', same(strId.roles, []) && strId.name === 'mallory' && strId.sub === 'mallory', strId);

    // Code reuse is refused
    // (the flow object's code was already exchanged)
    const reuse = await http('POST', disco.token_endpoint, {
      auth: ['raccordo-console', 's3cret'],
      form: { grant_type: 'authorization_code', code: flow.callback.searchParams.get('code'), redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43) },
    });
    check('code reuse refused', reuse.status === 400 && JSON.parse(reuse.text).error === 'invalid_grant', reuse.text);

    // Cookies of the provider over HTTPS
    const probe = new Map();
    const first = await http('GET', flow.firstAuth, { jar: probe });
    const attrs = Object.values(first.cookieAttrs);
    check('provider cookies are Secure, HttpOnly, SameSite=Lax', attrs.length > 0 && attrs.every((a) => a.includes('secure') && a.includes('httponly') && a.includes('samesite=lax')), first.cookieAttrs);

    // RP-initiated logout
    const end = new URL('/session/end', issuer);
    end.search = new URLSearchParams({ id_token_hint: flow.token.id_token, post_logout_redirect_uri: POST_LOGOUT, state: 'bye' }).toString();
    const endPage = await http('GET', end, { jar: flow.jar });
    const logoutForm = formOf(endPage.text);
    check('end_session shows the confirm form', endPage.status === 200 && /Yes, sign me out/.test(endPage.text) && logoutForm.fields.xsrf, endPage.text.slice(0, 200));
    const confirm = await http('POST', new URL(logoutForm.action, issuer), { jar: flow.jar, form: { ...logoutForm.fields, logout: 'yes' } });
    check('end_session confirm redirects to post_logout_redirect_uri', confirm.status === 303 && confirm.headers.location === `${POST_LOGOUT}?state=bye`, [confirm.status, confirm.headers.location]);
    const afterLogout = await codeFlow(issuer, 'analista', flow.jar);
    check('after logout the login page is shown again', afterLogout.loginShown, afterLogout.steps);

    check('nothing else on stdout', p.stdout() === `${JSON.stringify({ issuer })}\n`, p.stdout());
  } finally {
    p.child.stdin.end();
    const how = await withTimeout(p.exited, 5000);
    check('exits 0 when stdin closes', how !== 'timeout' && how.code === 0, how);
    if (how === 'timeout') p.child.kill('SIGKILL');
  }

  // 2. RSA first key: RS256 everywhere; SIGTERM.
  const q = await startProvider(writeConfig('rsa.json', [{ kid: 'r1', pem: join(dir, 'k2.pem') }, { kid: 'e2', pem: join(dir, 'k1.pem') }]));
  try {
    const jwks = JSON.parse((await http('GET', new URL('/jwks', q.issuer))).text);
    const cc = await http('POST', new URL('/token', q.issuer), { auth: ['analyst-tool', 's3cret2'], form: { grant_type: 'client_credentials', scope: 'api' } });
    const at = decodeJwt(JSON.parse(cc.text).access_token);
    check('RSA first: cc access token RS256 r1', same(at.header, { alg: 'RS256', typ: 'at+jwt', kid: 'r1' }) && verifyJwt(JSON.parse(cc.text).access_token, jwks), at.header);
    const flow = await codeFlow(q.issuer, 'analista');
    const idt = decodeJwt(flow.token.id_token);
    check('RSA first: id token RS256 r1', idt.header.alg === 'RS256' && idt.header.kid === 'r1' && verifyJwt(flow.token.id_token, jwks), idt.header);
  } finally {
    q.child.kill('SIGTERM');
    const how = await withTimeout(q.exited, 5000);
    check('exits 0 on SIGTERM', how !== 'timeout' && how.code === 0, how);
    if (how === 'timeout') q.child.kill('SIGKILL');
  }
}

try {
  await main();
} catch (err) {
  failed += 1;
  console.log(`FAIL uncaught: ${err.stack ?? err}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
