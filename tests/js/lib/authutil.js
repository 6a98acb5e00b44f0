// Helpers for the /auth/v1 suites: unique emails, supabase-js auth result assertions, plain
// fetch against /auth/v1 with the GoTrue error-shape check, and a raw refresh-token grant.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from './server.js';

export { decodeJwt };

export const API_VERSION = '2024-01-01';
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A password meeting `lower,upper,digit` and length >= 8. */
export const GOOD_PASSWORD = 'Corr3ctHorse';

let counter = 0;
/** A fresh, unique, lower-case address. */
export function uniqueEmail(prefix = 'user') {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${randomBytes(3).toString('hex')}@example.com`;
}

export const nowSec = () => Math.floor(Date.now() / 1000);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function showAuth(res) {
  const err = res?.error
    ? { name: res.error.name, status: res.error.status, code: res.error.code, message: res.error.message }
    : null;
  return JSON.stringify({ error: err, data: res?.data }, (k, v) =>
    typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}…` : v,
  );
}

/** Assert a supabase-js auth call succeeded; return its data. */
export function authOk(res, ctx = '') {
  assert.equal(res.error, null, `expected success ${ctx}, got ${showAuth(res)}`);
  return res.data;
}

/**
 * Assert a supabase-js auth call failed with the given HTTP status and error code.
 * `status` and `code` may be arrays of allowed values.
 */
export function authFails(res, status, code, ctx = '') {
  assert.ok(res.error, `expected error ${code}/${status} ${ctx}, got ${showAuth(res)}`);
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(res.error.status), `expected status ${statuses.join('|')} ${ctx}, got ${showAuth(res)}`);
  if (code !== undefined) {
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(res.error.code), `expected code ${codes.join('|')} ${ctx}, got ${showAuth(res)}`);
  }
  return res.error;
}

/**
 * Plain fetch against /auth/v1. Sends `apikey` (anon key unless `key` is given) and
 * `Authorization: Bearer <token ?? key>` unless `auth: false`; X-Supabase-Api-Version unless
 * `apiVersion: null`.
 */
export async function authFetch(
  srv,
  pathAndQuery,
  { method = 'GET', token, key, body, headers = {}, apiVersion = API_VERSION, auth = true } = {},
) {
  const k = key ?? srv.anonKey;
  const h = { apikey: k, ...headers };
  if (auth) h.Authorization = `Bearer ${token ?? k}`;
  if (apiVersion) h['X-Supabase-Api-Version'] = apiVersion;
  if (body !== undefined) h['Content-Type'] = 'application/json;charset=UTF-8';
  const res = await fetch(`${srv.url}/auth/v1${pathAndQuery}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await res.text();
  let json;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * Assert a plain-fetch auth error: status, JSON body with both `code` and `error_code`, a
 * message (`msg`, or `message`), and the X-Supabase-Api-Version header echoed when the request
 * sent it (then `code` is the string error code).
 */
export function assertAuthError(res, status, code, { apiVersion = API_VERSION, ctx = '' } = {}) {
  const show = `${res.status} ${res.text}`;
  const statuses = Array.isArray(status) ? status : [status];
  const codes = Array.isArray(code) ? code : [code];
  assert.ok(statuses.includes(res.status), `expected status ${statuses.join('|')} ${ctx}, got ${show}`);
  assert.equal(typeof res.json, 'object', `error body must be JSON ${ctx}: ${show}`);
  assert.notEqual(res.json, null, `error body must not be null ${ctx}: ${show}`);
  assert.ok('code' in res.json, `error body lacks "code" ${ctx}: ${show}`);
  assert.ok('error_code' in res.json, `error body lacks "error_code" ${ctx}: ${show}`);
  assert.ok(codes.includes(res.json.error_code), `expected error_code ${codes.join('|')} ${ctx}, got ${show}`);
  const msg = res.json.msg ?? res.json.message;
  assert.equal(typeof msg, 'string', `error body needs a "msg" string ${ctx}: ${show}`);
  assert.ok(msg.length > 0, `error message must be non-empty ${ctx}: ${show}`);
  if (apiVersion) {
    assert.equal(
      res.headers.get('x-supabase-api-version'),
      apiVersion,
      `error response must echo X-Supabase-Api-Version ${ctx}: ${show}`,
    );
    assert.ok(codes.includes(res.json.code), `with X-Supabase-Api-Version, "code" is the string code ${ctx}: ${show}`);
    assert.equal(res.json.code, res.json.error_code, `code and error_code must agree ${ctx}: ${show}`);
  }
  return res.json;
}

/** POST /token?grant_type=refresh_token with plain fetch (no client-side failure cache). */
export function refreshRaw(srv, refreshToken) {
  return authFetch(srv, '/token?grant_type=refresh_token', { method: 'POST', body: { refresh_token: refreshToken } });
}

/** GET /user with a user's access token. */
export function getUserRaw(srv, accessToken) {
  return authFetch(srv, '/user', { token: accessToken });
}

/** A fresh anon supabase-js client (in-memory session). */
export function anonClient(srv) {
  return srv.client('anon');
}

/** Sign up with a fresh client; returns {client, session, user, email, password}. */
export async function signUpUser(srv, { email = uniqueEmail(), password = GOOD_PASSWORD, data } = {}) {
  const client = anonClient(srv);
  const res = await client.auth.signUp({ email, password, options: data ? { data } : undefined });
  const d = authOk(res, `signUp ${email}`);
  assert.ok(d.session, `signUp without SMTP must return a session: ${JSON.stringify(d)}`);
  return { client, session: d.session, user: d.user, email, password };
}

/** Sign in with a fresh client; returns {client, session, user}. */
export async function signInUser(srv, email, password) {
  const client = anonClient(srv);
  const d = authOk(await client.auth.signInWithPassword({ email, password }), `signIn ${email}`);
  assert.ok(d.session?.access_token, `signIn must return a session: ${JSON.stringify(d)}`);
  return { client, session: d.session, user: d.user };
}

/** Assert every key of `expected` is deep-equal in `actual` (extra keys allowed). */
export function assertSubset(actual, expected, ctx = '') {
  assert.equal(typeof actual, 'object', `${ctx}: expected an object, got ${JSON.stringify(actual)}`);
  assert.notEqual(actual, null, `${ctx}: expected an object, got null`);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(actual[k], v, `${ctx}: key ${k} in ${JSON.stringify(actual)}`);
  }
}

/** Flip one character in the middle of a JWT's signature (never the last, padding-bearing char). */
export function tamperJwt(token) {
  const [h, p, s] = token.split('.');
  const i = Math.floor(s.length / 2);
  const c = s[i] === 'A' ? 'B' : 'A';
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

/** Env making rate limits irrelevant for suites that sign in a lot from 127.0.0.1. */
export const HIGH_RATE_LIMITS = {
  OUTPOST_AUTH_RATE_LIMIT_SIGNIN: '10000',
  OUTPOST_AUTH_RATE_LIMIT_SIGNUP: '10000',
  OUTPOST_AUTH_RATE_LIMIT_OTP: '10000',
  OUTPOST_AUTH_RATE_LIMIT_VERIFY: '10000',
  OUTPOST_AUTH_RATE_LIMIT_REFRESH: '10000',
};
