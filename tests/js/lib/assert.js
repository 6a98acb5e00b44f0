import assert from 'node:assert/strict';

export function show(res) {
  return JSON.stringify({ status: res.status, error: res.error, data: res.data, count: res.count });
}

/** Assert a supabase-js result succeeded and return its data. */
export function ok(res, status) {
  assert.equal(res.error, null, `expected success, got ${show(res)}`);
  if (status !== undefined) {
    const allowed = Array.isArray(status) ? status : [status];
    assert.ok(allowed.includes(res.status), `expected status ${allowed.join('|')}, got ${show(res)}`);
  }
  return res.data;
}

/** Assert a supabase-js result failed with the given HTTP status and PostgREST code. */
export function fails(res, status, code) {
  assert.notEqual(res.error, null, `expected error ${code}/${status}, got ${show(res)}`);
  assert.equal(res.status, status, `expected status ${status}, got ${show(res)}`);
  if (code !== undefined) assert.equal(res.error.code, code, `expected code ${code}, got ${show(res)}`);
  assert.equal(res.data, null, `failed request must not carry data: ${show(res)}`);
  return res.error;
}

/** The PostgREST error shape: {code, details, hint, message}, each a string or null. */
export function assertErrorShape(body, ctx = '') {
  assert.equal(typeof body, 'object', `error body must be a JSON object ${ctx}: ${JSON.stringify(body)}`);
  assert.notEqual(body, null, `error body must not be null ${ctx}`);
  for (const k of ['code', 'details', 'hint', 'message']) {
    assert.ok(k in body, `error body lacks "${k}" ${ctx}: ${JSON.stringify(body)}`);
    assert.ok(
      body[k] === null || typeof body[k] === 'string',
      `error "${k}" must be string|null ${ctx}: ${JSON.stringify(body)}`,
    );
  }
  assert.equal(typeof body.message, 'string', `message must be a string ${ctx}`);
  assert.ok(body.message.length > 0, `message must be non-empty ${ctx}`);
}
