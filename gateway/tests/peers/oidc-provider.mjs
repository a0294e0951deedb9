// A real OpenID Provider (panva's oidc-provider) for Raccordo's integration tests.
//
// Usage: node oidc-provider.mjs CONFIG.json
//
// CONFIG.json (written by the Rust test):
//   host, port (0 = pick a free port), tls {cert, key} (PEM file paths),
//   keys [{kid, pem}] (PKCS#8 private keys, EC P-256/P-384, RSA or Ed25519; the FIRST key
//   signs ID tokens and JWT access tokens), audience, access_token_ttl (seconds),
//   roles_claim, accounts {id: {name, roles}}, clients [{client_id, client_secret,
//   redirect_uris?, post_logout_redirect_uris?, grant_types, roles?, ...other client metadata}].
//   A `pem`/`cert`/`key` value that starts with "-----BEGIN" is taken as inline PEM text.
//
// Once listening it prints exactly one line to stdout: {"issuer":"https://HOST:PORT"}.
// Everything else (oidc-provider notices included) goes to stderr. It exits on SIGTERM,
// SIGINT, and on end-of-file of stdin when stdin is a pipe or socket (so a parent that
// dies, closing the pipe, does not leave it running; spawn it with a piped stdin and
// keep the handle open). With stdin on /dev/null or closed, stdin is not watched.
//
// Interactions (features.devInteractions, the built-in development pages):
//   GET  /auth?...                      -> 303 to /interaction/<uid>
//   login page:   <form action="/interaction/<uid>/login" method="post">
//                   <input type="hidden" name="prompt" value="login">
//                   <input type="text" name="login">        (the account id, e.g. "analista")
//                   <input type="password" name="password"> (any value is accepted)
//                   <button type="submit">Sign-in</button>
//   consent page: <form action="/interaction/<uid>/login" method="post">
//                   <input type="hidden" name="prompt" value="consent">
//                   <button type="submit">Continue</button>
//                 (shown only when the session has no grant yet for the client)
//   Both POSTs answer 303 to /auth/<uid> (resume), which answers 303 to the redirect_uri
//   with ?code=...&state=...&iss=...
//   The interaction cookies (_interaction, _interaction_resume, _session and their
//   .sig companions) are host-only, Secure, HttpOnly, SameSite=Lax.
//
// RP-initiated logout: GET /session/end?id_token_hint=...&post_logout_redirect_uri=...
//   shows a page with <form id="op.logoutForm" method="post" action="/session/end/confirm">
//   (hidden xsrf field) and two buttons: <button name="logout" value="yes">Yes, sign me out</button>
//   and "No, stay signed in". Submitting "yes" answers 303 to the post_logout_redirect_uri.

import { readFileSync, fstatSync } from 'node:fs';
import { createServer } from 'node:https';
import { createPrivateKey, randomBytes } from 'node:crypto';

// oidc-provider prints its NOTICE lines with console.info, i.e. on stdout: stdout is
// reserved for the single ready line, so route every console output to stderr.
for (const method of ['log', 'info', 'debug']) {
  console[method] = (...args) => console.error(...args);
}

const { default: Provider, errors } = await import('oidc-provider');

function fail(message) {
  console.error(`oidc-provider.mjs: ${message}`);
  process.exit(2);
}

function pemText(value, what) {
  if (typeof value !== 'string' || value === '') fail(`${what} must be a PEM file path`);
  if (value.startsWith('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    return fail(`cannot read ${what} ${value}: ${err.message}`);
  }
}

function algFor(jwk) {
  switch (jwk.kty) {
    case 'RSA':
      return 'RS256';
    case 'EC':
      switch (jwk.crv) {
        case 'P-256': return 'ES256';
        case 'P-384': return 'ES384';
        case 'P-521': return 'ES512';
        default: return fail(`unsupported EC curve ${jwk.crv}`);
      }
    case 'OKP':
      if (jwk.crv === 'Ed25519') return 'Ed25519';
      return fail(`unsupported OKP curve ${jwk.crv}`);
    default:
      return fail(`unsupported key type ${jwk.kty}`);
  }
}

const configPath = process.argv[2];
if (!configPath) fail('usage: node oidc-provider.mjs CONFIG.json');
let config;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8'));
} catch (err) {
  fail(`cannot read config ${configPath}: ${err.message}`);
}

const host = config.host ?? '127.0.0.1';
const port = Number(config.port ?? 0);
const audience = config.audience;
const accessTokenTTL = Number(config.access_token_ttl ?? 300);
const rolesClaim = config.roles_claim ?? 'roles';
const accounts = config.accounts ?? {};
if (typeof audience !== 'string' || audience === '') fail('config.audience is required');
if (!config.tls?.cert || !config.tls?.key) fail('config.tls.cert and config.tls.key are required');
if (!Array.isArray(config.keys) || config.keys.length === 0) fail('config.keys must list at least one key');
if (!Array.isArray(config.clients)) fail('config.clients must be an array');

// Signing keys: private JWKs, in config order. Every key gets an explicit `alg`, so
// oidc-provider's key selection (a stable sort by score) keeps config order among keys
// of the same alg; access tokens additionally name the first key's kid explicitly.
const keys = config.keys.map(({ kid, pem }, i) => {
  if (typeof kid !== 'string' || kid === '') fail(`config.keys[${i}].kid is required`);
  let jwk;
  try {
    jwk = createPrivateKey(pemText(pem, `config.keys[${i}].pem`)).export({ format: 'jwk' });
  } catch (err) {
    fail(`config.keys[${i}]: ${err.message}`);
  }
  return { ...jwk, kid, use: 'sig', alg: algFor(jwk) };
});
const signingAlg = keys[0].alg;
const signingKid = keys[0].kid;

// Client metadata for oidc-provider; `roles` is ours (client_credentials token roles).
const clientRoles = new Map();
const clients = config.clients.map((c, i) => {
  const { roles, ...metadata } = c;
  if (!metadata.client_id) fail(`config.clients[${i}].client_id is required`);
  clientRoles.set(metadata.client_id, Array.isArray(roles) ? roles : []);
  const grantTypes = metadata.grant_types ?? ['authorization_code'];
  const codeFlow = grantTypes.includes('authorization_code');
  return {
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: signingAlg,
    redirect_uris: [],
    ...metadata,
    grant_types: grantTypes,
    response_types: metadata.response_types ?? (codeFlow ? ['code'] : []),
  };
});

function accountRoles(accountId) {
  const roles = accounts[accountId]?.roles;
  return Array.isArray(roles) ? roles : [];
}

function watchStdin() {
  let stat;
  try {
    stat = fstatSync(0);
  } catch {
    return; // stdin closed
  }
  if (!stat.isFIFO() && !stat.isSocket()) return; // /dev/null, a file or a TTY
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

let server;
function shutdown(why) {
  console.error(`oidc-provider.mjs: exiting (${why})`);
  try {
    server?.closeAllConnections?.();
    server?.close();
  } catch { /* exiting anyway */ }
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
watchStdin();

// Listen first: the issuer needs the real port. Requests that arrive before the provider
// is built (none should: the port is announced only afterwards) get a 503.
let handler = (req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
server = createServer(
  { cert: pemText(config.tls.cert, 'config.tls.cert'), key: pemText(config.tls.key, 'config.tls.key') },
  (req, res) => handler(req, res),
);
server.on('tlsClientError', (err) => console.error(`oidc-provider.mjs: TLS client error: ${err.message}`));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, host, resolve);
});
const actualPort = server.address().port;
const issuer = `https://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;

const configuration = {
  clients,
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')] },
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: signingAlg,
  },
  enabledJWA: {
    idTokenSigningAlgValues: [...new Set(['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA', ...keys.map((k) => k.alg)])],
  },
  scopes: ['openid', 'profile', 'roles', 'api'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    roles: [rolesClaim],
  },
  // Put the scope-granted claims (name, roles) into the ID token itself, not only at userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter: the audience, for /auth, the code exchange and client_credentials.
      defaultResource: async (ctx, client, oneOf) => oneOf ?? audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) throw new errors.InvalidTarget();
        return {
          scope: 'api',
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL,
          jwt: { sign: { alg: signingAlg, kid: signingKid } },
        };
      },
    },
  },
  // Any login name is accepted (devInteractions accepts any password); unknown names get no roles.
  findAccount: async (ctx, accountId) => ({
    accountId,
    claims: async () => ({
      sub: accountId,
      name: accounts[accountId]?.name ?? accountId,
      [rolesClaim]: accountRoles(accountId),
    }),
  }),
  extraTokenClaims: async (ctx, token) => {
    if (token.kind === 'ClientCredentials') {
      return { [rolesClaim]: clientRoles.get(token.clientId) ?? [] };
    }
    if (token.accountId) {
      return { [rolesClaim]: accountRoles(token.accountId) };
    }
    return undefined;
  },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 86400,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
    ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>oops! something went wrong</title></head>`
      + `<body><h1>oops! something went wrong</h1>${Object.entries(out).map(([k, v]) => `<pre><strong>${esc(k)}</strong>: ${esc(v)}</pre>`).join('')}</body></html>`;
  },
};

let provider;
try {
  provider = new Provider(issuer, configuration);
} catch (err) {
  fail(`invalid provider configuration: ${err.stack ?? err}`);
}

for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error', 'introspection.error', 'jwks.error', 'discovery.error', 'userinfo.error']) {
  provider.on(event, (ctx, err) => {
    console.error(`oidc-provider.mjs: ${event}: ${err?.name ?? ''} ${err?.message ?? err}${err?.error_description ? ` (${err.error_description})` : ''}`);
  });
}
provider.use(async (ctx, next) => {
  await next();
  console.error(`oidc-provider.mjs: ${ctx.method} ${ctx.path} -> ${ctx.status}`);
});

handler = provider.callback();
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
