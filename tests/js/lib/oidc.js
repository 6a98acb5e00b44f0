// A real OpenID Connect provider (panva's oidc-provider) in the test process, and a scripted
// "browser" that signs in through it.
//
//   const idp = await startOidc({ accounts: { alice: { email: 'alice@example.com' } } });
//   const srv = await startServer({ env: idp.outpostEnv('keycloak') });
//   idp.setRedirectUris([`${srv.url}/auth/v1/callback`]);     // Outpost's port is known only now
//   const { data } = await client.auth.signInWithOAuth({ provider: 'keycloak', options: {...} });
//   const { location } = await idp.loginThroughProvider(data.url, { account: 'alice' });
//   await idp.stop();
//
// One confidential client (client_secret_basic; like Keycloak, a client_secret_post request to
// the token endpoint is accepted as well). Scopes openid, email, profile; claims email,
// email_verified, name, preferred_username, also put into the ID token. Logins go through
// oidc-provider's development interactions (login form + consent form), played by
// loginThroughProvider with fetch, manual redirects and a small cookie jar.

import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as querystring from 'node:querystring';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

/**
 * Start the provider on 127.0.0.1 and a free port.
 * @param {object} [opts]
 * @param {Record<string, {email: string, email_verified?: boolean, name?: string}>} [opts.accounts]
 *        login name (= subject) -> claims
 * @param {string} [opts.clientId]
 * @param {string} [opts.clientSecret]
 * @param {string[]} [opts.redirectUris] can be changed later with setRedirectUris
 */
export async function startOidc({
  accounts = {},
  clientId = 'outpost-test-client',
  clientSecret = `secret-${randomBytes(16).toString('hex')}`,
  redirectUris = ['http://127.0.0.1:1/auth/v1/callback'],
} = {}) {
  const accountMap = new Map(Object.entries(accounts));
  /** every request the provider saw: {method, path, auth} (auth: how the client authenticated) */
  const requests = [];

  let clientMeta = {
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  };

  // The client is served through the adapter (not the static `clients` list) so that its
  // redirect_uris can be changed after Outpost has started and its port is known.
  class Adapter extends MemoryAdapter {
    constructor(name) {
      super(name);
      this.modelName = name;
    }
    async find(id) {
      if (this.modelName === 'Client') return id === clientMeta.client_id ? structuredClone(clientMeta) : undefined;
      return super.find(id);
    }
  }

  let handler = (req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    adapter: Adapter,
    clients: [],
    async findAccount(ctx, sub) {
      const acc = accountMap.get(sub);
      if (!acc) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: acc.email,
            email_verified: acc.email_verified ?? true,
            name: acc.name ?? sub,
            preferred_username: sub,
          };
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    conformIdTokenClaims: false, // email etc. also in the ID token, not only at userinfo
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: { keys: [{ ...signingKey, kid: 'test-rs256', alg: 'RS256', use: 'sig' }] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      ClientCredentials: 600,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 86400,
      Session: 3600,
    },
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
    },
    pkce: { required: () => false },
    renderError(ctx, out, error) {
      ctx.type = 'json';
      ctx.body = { ...out, debug: String(error?.message ?? error) };
    },
  });
  provider.on('server_error', (ctx, err) => {
    requests.push({ method: ctx.method, path: ctx.path, serverError: String(err?.stack ?? err) });
  });

  const callback = provider.callback();
  handler = (req, res) => {
    const path = req.url.split('?')[0];
    const entry = { method: req.method, path };
    requests.push(entry);
    if (req.method !== 'POST' || path !== '/token') return callback(req, res);
    // Token endpoint: note how the client authenticated, and accept client_secret_post too.
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = querystring.parse(raw);
      entry.body = body;
      if (req.headers.authorization) {
        entry.auth = /^basic /i.test(req.headers.authorization) ? 'client_secret_basic' : 'other';
      } else if (body.client_secret !== undefined) {
        entry.auth = 'client_secret_post';
        const id = String(body.client_id ?? '');
        const secret = String(body.client_secret);
        req.headers.authorization = `Basic ${Buffer.from(
          `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`,
        ).toString('base64')}`;
        delete body.client_secret;
      } else {
        entry.auth = 'none';
      }
      req.body = body; // oidc-provider reads an already-parsed body from req.body
      callback(req, res);
    });
  };

  const outpostEnv = (name = 'keycloak') => {
    const N = name.toUpperCase();
    return {
      OUTPOST_AUTH_PROVIDERS: name,
      [`OUTPOST_AUTH_${N}_CLIENT_ID`]: clientId,
      [`OUTPOST_AUTH_${N}_CLIENT_SECRET`]: clientSecret,
      [`OUTPOST_AUTH_${N}_DISCOVERY_URL`]: `${issuer}/.well-known/openid-configuration`,
    };
  };

  return {
    issuer,
    port,
    clientId,
    clientSecret,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    provider,
    requests,
    outpostEnv,
    setRedirectUris(uris) {
      clientMeta = { ...clientMeta, redirect_uris: uris };
    },
    addAccount(login, claims) {
      accountMap.set(login, claims);
    },
    loginThroughProvider: (authorizeUrl, opts = {}) => loginThroughProvider(authorizeUrl, { issuer, ...opts }),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** A minimal cookie jar: per host (ports share cookies, as in browsers), honouring Path. */
class CookieJar {
  constructor() {
    this.cookies = []; // {host, path, name, value}
  }
  store(url, res) {
    const u = new URL(url);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=').map((s) => s.trim());
        if (/^path$/i.test(k)) path = v || '/';
        if (/^max-age$/i.test(k) && Number(v) <= 0) expired = true;
        if (/^expires$/i.test(k) && Date.parse(v) < Date.now()) expired = true;
      }
      this.cookies = this.cookies.filter((c) => !(c.host === u.hostname && c.path === path && c.name === name));
      if (!expired) this.cookies.push({ host: u.hostname, path, name, value });
    }
  }
  header(url) {
    const u = new URL(url);
    const list = this.cookies.filter(
      (c) =>
        c.host === u.hostname &&
        (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)),
    );
    return list.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

const isCallback = (url) => new URL(url).pathname.endsWith('/auth/v1/callback');

/**
 * Play the browser: GET authorizeUrl (Outpost's /auth/v1/authorize), follow the redirect to the
 * provider, sign in as `account` on the login form, accept (or with deny:true abort) the consent
 * form, follow the provider's redirect back to Outpost's /auth/v1/callback, and stop there.
 *
 * @returns {Promise<{location: string|null, status: number, body: string|null, url: string,
 *   callbackUrl: string|null, steps: string[]}>}
 *   location: where Outpost's callback (or, failing earlier, Outpost's authorize) redirects the
 *   browser to — the app URL with `#access_token=…` / `?code=…` or error parameters. When the last
 *   response was not a redirect, location is null and status/body describe it. callbackUrl: the
 *   provider's redirect to Outpost's callback (with code and state), to try replaying it.
 */
export async function loginThroughProvider(
  authorizeUrl,
  { account, password = 'any-password', deny = false, issuer, maxSteps = 25 } = {},
) {
  const jar = new CookieJar();
  const outpostOrigin = new URL(authorizeUrl).origin;
  // Without the issuer, the provider is the first other origin Outpost sends the browser to.
  let providerOrigin = issuer ? new URL(issuer).origin : null;
  const steps = [];
  let callbackUrl = null;
  let url = authorizeUrl;
  let init = { method: 'GET' };

  for (let i = 0; i < maxSteps; i++) {
    const headers = { ...(init.headers ?? {}) };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, res);
    steps.push(`${init.method} ${url} -> ${res.status}`);
    const here = new URL(url);
    if (here.origin === outpostOrigin && isCallback(url)) callbackUrl = url;

    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location'), url).toString();
      const nextOrigin = new URL(next).origin;
      const fromOutpost = here.origin === outpostOrigin;
      if (!providerOrigin && fromOutpost && !isCallback(url) && nextOrigin !== outpostOrigin) providerOrigin = nextOrigin;
      const leavingToApp = nextOrigin !== outpostOrigin && nextOrigin !== providerOrigin;
      // Outpost's callback answered, or Outpost sent the browser somewhere that is neither
      // Outpost nor the provider (e.g. authorize failing straight back to the app).
      if ((fromOutpost && isCallback(url)) || (fromOutpost && leavingToApp)) {
        return { location: next, status: res.status, body: null, url, callbackUrl, steps };
      }
      if (!fromOutpost && leavingToApp) {
        // The provider redirects somewhere other than Outpost: report it (misconfigured redirect_uri).
        return { location: next, status: res.status, body: null, url, callbackUrl, steps };
      }
      url = next;
      init = { method: 'GET' };
      continue;
    }

    const body = await res.text();
    // Outpost's authorize may answer JSON {url} (skip_http_redirect=true): go there.
    if (here.origin === outpostOrigin && res.status === 200 && !isCallback(url)) {
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        /* not JSON */
      }
      if (json && typeof json.url === 'string') {
        steps.push(`  (JSON url) ${json.url}`);
        url = new URL(json.url, url).toString();
        init = { method: 'GET' };
        continue;
      }
    }

    // oidc-provider's development interaction pages.
    const prompt = /name="prompt" value="(login|consent)"/.exec(body)?.[1];
    if (res.status === 200 && prompt && /\/interaction\/[^/]+$/.test(here.pathname)) {
      const action = new URL(
        (/<form[^>]*action="([^"]+)"/.exec(body)?.[1] ?? here.pathname).replace(/&amp;/g, '&'),
        url,
      ).toString();
      if (deny) {
        url = `${here.origin}${here.pathname}/abort`;
        init = { method: 'GET' };
        continue;
      }
      const form =
        prompt === 'login'
          ? new URLSearchParams({ prompt: 'login', login: account ?? '', password })
          : new URLSearchParams({ prompt: 'consent' });
      url = action;
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      };
      continue;
    }

    return { location: null, status: res.status, body, url, callbackUrl, steps };
  }
  throw new Error(`loginThroughProvider: more than ${maxSteps} steps:\n${steps.join('\n')}`);
}
