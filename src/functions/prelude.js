// The Web platform subset an edge function expects, on top of a few native helpers
// (__outpost_*). Evaluated in every fresh context before the function's module.
(() => {
  const native = globalThis.__outpost;
  const lower = (s) => String(s).toLowerCase();

  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init && typeof init === 'object') for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(k, v) {
      const key = lower(k);
      const prev = this._map.get(key);
      this._map.set(key, prev === undefined ? String(v) : `${prev}, ${v}`);
    }
    set(k, v) { this._map.set(lower(k), String(v)); }
    get(k) { const v = this._map.get(lower(k)); return v === undefined ? null : v; }
    has(k) { return this._map.has(lower(k)); }
    delete(k) { this._map.delete(lower(k)); }
    forEach(fn) { for (const [k, v] of this._map) fn(v, k, this); }
    entries() { return this._map.entries(); }
    keys() { return this._map.keys(); }
    values() { return this._map.values(); }
    [Symbol.iterator]() { return this._map.entries(); }
  }

  class URLSearchParams {
    constructor(init) {
      this._list = [];
      if (typeof init === 'string') {
        const s = init.startsWith('?') ? init.slice(1) : init;
        for (const part of s.split('&')) {
          if (!part) continue;
          const i = part.indexOf('=');
          const dec = (x) => decodeURIComponent(x.replace(/\+/g, ' '));
          this._list.push(i < 0 ? [dec(part), ''] : [dec(part.slice(0, i)), dec(part.slice(i + 1))]);
        }
      } else if (Array.isArray(init)) {
        for (const [k, v] of init) this._list.push([String(k), String(v)]);
      } else if (init && typeof init === 'object') {
        for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
      }
    }
    get(k) { const e = this._list.find(([x]) => x === k); return e ? e[1] : null; }
    getAll(k) { return this._list.filter(([x]) => x === k).map(([, v]) => v); }
    has(k) { return this._list.some(([x]) => x === k); }
    set(k, v) { this.delete(k); this._list.push([k, String(v)]); }
    append(k, v) { this._list.push([k, String(v)]); }
    delete(k) { this._list = this._list.filter(([x]) => x !== k); }
    forEach(fn) { for (const [k, v] of this._list) fn(v, k, this); }
    entries() { return this._list[Symbol.iterator](); }
    [Symbol.iterator]() { return this._list[Symbol.iterator](); }
    toString() { return this._list.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'); }
  }

  class URL {
    constructor(input, base) {
      let s = String(input);
      if (base !== undefined && !/^[a-z][a-z0-9+.-]*:/i.test(s)) {
        const b = new URL(base);
        s = s.startsWith('/') ? `${b.origin}${s}` : `${b.origin}${b.pathname.replace(/[^/]*$/, '')}${s}`;
      }
      const m = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(s);
      if (!m) throw new TypeError(`Invalid URL: ${s}`);
      this.protocol = m[1].toLowerCase();
      this.host = m[2];
      const at = this.host.lastIndexOf(':');
      this.hostname = at > 0 && !this.host.endsWith(']') ? this.host.slice(0, at) : this.host;
      this.port = at > 0 && !this.host.endsWith(']') ? this.host.slice(at + 1) : '';
      this.pathname = m[3] || '/';
      this.searchParams = new URLSearchParams(m[4] || '');
      this.hash = m[5] || '';
    }
    get origin() { return `${this.protocol}//${this.host}`; }
    get search() { const q = this.searchParams.toString(); return q ? `?${q}` : ''; }
    get href() { return `${this.origin}${this.pathname}${this.search}${this.hash}`; }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }

  class TextEncoder { encode(s = '') { return native.utf8Encode(String(s)); } }
  class TextDecoder { decode(b) { return b === undefined ? '' : native.utf8Decode(b instanceof ArrayBuffer ? new Uint8Array(b) : b); } }

  // A ReadableStream enough for streaming responses: chunks queued by the source (start/pull)
  // and read one at a time, by the host for a reply or by the function itself.
  class ReadableStream {
    constructor(source = {}) {
      this._queue = [];
      this._closed = false;
      this._error = null;
      this._waiters = [];
      this._source = source;
      const wake = () => { for (const w of this._waiters.splice(0)) w(); };
      this._controller = {
        enqueue: (chunk) => { this._queue.push(chunk); wake(); },
        close: () => { this._closed = true; wake(); },
        error: (e) => { this._error = e === undefined ? new Error('the stream failed') : e; wake(); },
        get desiredSize() { return 1; },
      };
      this._started = Promise.resolve(typeof source.start === 'function' ? source.start(this._controller) : undefined);
      this.locked = false;
    }
    async _read() {
      await this._started;
      for (;;) {
        if (this._queue.length) return { value: this._queue.shift(), done: false };
        if (this._error) throw this._error;
        if (this._closed) return { value: undefined, done: true };
        if (typeof this._source.pull === 'function') {
          await this._source.pull(this._controller);
          if (this._queue.length || this._closed || this._error) continue;
        }
        await new Promise((r) => this._waiters.push(r));
      }
    }
    getReader() {
      this.locked = true;
      return { read: () => this._read(), cancel: (r) => this.cancel(r), releaseLock: () => { this.locked = false; }, closed: Promise.resolve() };
    }
    async cancel(reason) {
      this._closed = true;
      this._queue = [];
      if (typeof this._source.cancel === 'function') await this._source.cancel(reason);
    }
    async *[Symbol.asyncIterator]() {
      const reader = this.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    }
  }

  class Blob {
    constructor(parts = [], options = {}) {
      const chunks = parts.map((p) => (p instanceof Blob ? p._bytes : toBytes(p)));
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) { out.set(c, at); at += c.length; }
      this._bytes = out;
      this.type = options.type || '';
    }
    get size() { return this._bytes.length; }
    async arrayBuffer() { return this._bytes.slice().buffer; }
    async text() { return native.utf8Decode(this._bytes); }
    async bytes() { return this._bytes.slice(); }
  }

  class File extends Blob {
    constructor(parts, name, options = {}) {
      super(parts, options);
      this.name = String(name);
      this.lastModified = options.lastModified || Date.now();
    }
  }

  class FormData {
    constructor() { this._list = []; }
    append(k, v, filename) { this._list.push([String(k), FormData._value(v, filename)]); }
    set(k, v, filename) { this.delete(k); this.append(k, v, filename); }
    get(k) { const e = this._list.find(([x]) => x === k); return e ? e[1] : null; }
    getAll(k) { return this._list.filter(([x]) => x === k).map(([, v]) => v); }
    has(k) { return this._list.some(([x]) => x === k); }
    delete(k) { this._list = this._list.filter(([x]) => x !== k); }
    forEach(fn) { for (const [k, v] of this._list) fn(v, k, this); }
    entries() { return this._list[Symbol.iterator](); }
    keys() { return this._list.map(([k]) => k)[Symbol.iterator](); }
    values() { return this._list.map(([, v]) => v)[Symbol.iterator](); }
    [Symbol.iterator]() { return this._list[Symbol.iterator](); }
    static _value(v, filename) {
      if (v instanceof Blob) return v instanceof File && filename === undefined ? v : new File([v], filename === undefined ? 'blob' : filename, { type: v.type });
      return String(v);
    }
    // multipart/form-data bytes and their content type.
    _encode() {
      const boundary = `----outpost${crypto.randomUUID().replace(/-/g, '')}`;
      const parts = [];
      const quote = (x) => x.replace(/"/g, '%22').replace(/\r?\n/g, ' ');
      for (const [k, v] of this._list) {
        if (v instanceof File) {
          parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(k)}"; filename="${quote(v.name)}"\r\nContent-Type: ${v.type || 'application/octet-stream'}\r\n\r\n`, v._bytes, '\r\n');
        } else {
          parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(k)}"\r\n\r\n${v}\r\n`);
        }
      }
      parts.push(`--${boundary}--\r\n`);
      return [new Blob(parts)._bytes, `multipart/form-data; boundary=${boundary}`];
    }
  }

  const toBytes = (body) => {
    if (body === undefined || body === null) return new Uint8Array(0);
    if (body instanceof Blob) return body._bytes;
    if (body instanceof FormData) return body._encode()[0];
    if (body instanceof Uint8Array) return body;
    if (body instanceof ArrayBuffer) return new Uint8Array(body);
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (body instanceof URLSearchParams) return native.utf8Encode(body.toString());
    return native.utf8Encode(String(body));
  };

  class Body {
    _init(body, headers) {
      this.bodyUsed = false;
      this._stream = body instanceof ReadableStream ? body : null;
      if (body instanceof FormData) {
        const [bytes, type] = body._encode();
        this._bytes = bytes;
        if (!headers.has('content-type')) headers.set('content-type', type);
        return;
      }
      if (body instanceof Blob && body.type && !headers.has('content-type')) headers.set('content-type', body.type);
      this._bytes = this._stream ? new Uint8Array(0) : toBytes(body);
    }
    get body() {
      if (this._stream) return this._stream;
      const bytes = this._bytes;
      return new ReadableStream({ start(c) { if (bytes.length) c.enqueue(bytes); c.close(); } });
    }
    async _all() {
      this.bodyUsed = true;
      if (!this._stream) return this._bytes;
      const chunks = [];
      for await (const c of this._stream) chunks.push(c);
      this._stream = null;
      this._bytes = new Blob(chunks)._bytes;
      return this._bytes;
    }
    async arrayBuffer() { return (await this._all()).slice().buffer; }
    async bytes() { return (await this._all()).slice(); }
    async blob() { return new Blob([await this._all()], { type: this.headers.get('content-type') || '' }); }
    async text() { return native.utf8Decode(await this._all()); }
    async json() { return JSON.parse(await this.text()); }
    async formData() {
      const type = this.headers.get('content-type') || '';
      const form = new FormData();
      if (/^multipart\/form-data/i.test(type)) {
        for (const p of native.multipart(await this._all(), type)) {
          if (p.filename !== undefined) form.append(p.name, new File([p.bytes], p.filename, { type: p.type || '' }));
          else form.append(p.name, native.utf8Decode(p.bytes));
        }
        return form;
      }
      if (/^application\/x-www-form-urlencoded/i.test(type) || !type) {
        for (const [k, v] of new URLSearchParams(await this.text())) form.append(k, v);
        return form;
      }
      throw new TypeError(`formData: cannot read a ${type} body as form data`);
    }
  }

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      this.url = input instanceof Request ? input.url : String(input);
      this.method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
      this.headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
      this._init(init.body !== undefined ? init.body : input instanceof Request ? input._bytes : undefined, this.headers);
    }
  }

  class Response extends Body {
    constructor(body = null, init = {}) {
      super();
      this.status = init.status === undefined ? 200 : init.status;
      if (!Number.isInteger(this.status) || this.status < 200 || this.status > 599) {
        throw new RangeError(`Response status ${init.status} is outside 200-599`);
      }
      this.statusText = init.statusText || '';
      this.headers = new Headers(init.headers);
      if (typeof body === 'string' && !this.headers.has('content-type')) {
        this.headers.set('content-type', 'text/plain;charset=UTF-8');
      }
      if (body instanceof URLSearchParams && !this.headers.has('content-type')) {
        this.headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      }
      this._init(body, this.headers);
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(JSON.stringify(data), { ...init, headers });
    }
  }

  const fmt = (args) => args.map((a) => {
    if (typeof a === 'string') return a;
    if (a instanceof Error) return `${a.name}: ${a.message}`;
    try { return JSON.stringify(a); } catch { return String(a); }
  }).join(' ');
  const console = {
    log: (...a) => native.log('log', fmt(a)),
    info: (...a) => native.log('info', fmt(a)),
    debug: (...a) => native.log('debug', fmt(a)),
    warn: (...a) => native.log('warn', fmt(a)),
    error: (...a) => native.log('error', fmt(a)),
  };

  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const btoa = (s) => {
    s = String(s);
    let out = '';
    for (let i = 0; i < s.length; i += 3) {
      const [a, b, c] = [s.charCodeAt(i), s.charCodeAt(i + 1), s.charCodeAt(i + 2)];
      if (a > 255 || b > 255 || c > 255) throw new Error('btoa: characters outside Latin-1');
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += b64[(n >> 18) & 63] + b64[(n >> 12) & 63] + (i + 1 < s.length ? b64[(n >> 6) & 63] : '=') + (i + 2 < s.length ? b64[n & 63] : '=');
    }
    return out;
  };
  const atob = (s) => {
    s = String(s).replace(/[\s=]+/g, '');
    let out = '';
    for (let i = 0; i < s.length; i += 4) {
      const n = [0, 1, 2, 3].map((j) => (i + j < s.length ? b64.indexOf(s[i + j]) : 0));
      if (n.some((x) => x < 0)) throw new Error('atob: not base64');
      const v = (n[0] << 18) | (n[1] << 12) | (n[2] << 6) | n[3];
      out += String.fromCharCode((v >> 16) & 255);
      if (i + 2 < s.length) out += String.fromCharCode((v >> 8) & 255);
      if (i + 3 < s.length) out += String.fromCharCode(v & 255);
    }
    return out;
  };

  let handler = null;
  const Deno = {
    serve(a, b) { handler = typeof a === 'function' ? a : (b || a.handler); },
    env: { get: (k) => native.env(String(k)), toObject: () => native.envAll() },
  };
  // crypto.subtle: digests and HMAC keys (raw), which is what webhook receivers and signed
  // tokens need; other algorithms are refused by name.
  const hashName = (alg) => {
    const n = typeof alg === 'string' ? alg : alg && (typeof alg.hash === 'string' ? alg.hash : alg.hash ? alg.hash.name : alg.name);
    return String(n).toUpperCase();
  };
  const algName = (alg) => String(typeof alg === 'string' ? alg : alg && alg.name).toUpperCase();
  class CryptoKey {
    constructor(raw, hash, extractable, usages) {
      this._raw = raw;
      this.type = 'secret';
      this.algorithm = { name: 'HMAC', hash: { name: hash }, length: raw.length * 8 };
      this.extractable = !!extractable;
      this.usages = [...(usages || [])];
    }
  }
  const hmacKey = (alg, key, usage) => {
    if (algName(alg) !== 'HMAC') throw new DOMException(`${algName(alg)} is not supported: only HMAC`, 'NotSupportedError');
    if (!(key instanceof CryptoKey)) throw new TypeError('key must be a CryptoKey from importKey');
    if (!key.usages.includes(usage)) throw new DOMException(`the key cannot ${usage}`, 'InvalidAccessError');
    return key;
  };
  const subtle = {
    async digest(alg, data) { return native.digest(algName(alg), toBytes(data)).buffer; },
    async importKey(format, keyData, alg, extractable, usages) {
      if (format !== 'raw') throw new DOMException(`key format ${format} is not supported: only raw`, 'NotSupportedError');
      if (algName(alg) !== 'HMAC') throw new DOMException(`${algName(alg)} is not supported: only HMAC`, 'NotSupportedError');
      return new CryptoKey(toBytes(keyData).slice(), hashName(alg), extractable, usages);
    },
    async exportKey(format, key) {
      if (format !== 'raw' || !key.extractable) throw new DOMException('the key cannot be exported', 'InvalidAccessError');
      return key._raw.slice().buffer;
    },
    async sign(alg, key, data) {
      hmacKey(alg, key, 'sign');
      return native.hmac(key.algorithm.hash.name, key._raw, toBytes(data)).buffer;
    },
    async verify(alg, key, signature, data) {
      hmacKey(alg, key, 'verify');
      return native.timingSafeEqual(native.hmac(key.algorithm.hash.name, key._raw, toBytes(data)), toBytes(signature));
    },
  };
  class DOMException extends Error {
    constructor(message, name = 'Error') { super(message); this.name = name; }
  }
  const crypto = {
    randomUUID: () => native.uuid(),
    getRandomValues: (arr) => { const r = native.random(arr.length); for (let i = 0; i < arr.length; i++) arr[i] = r[i]; return arr; },
    subtle,
  };

  // Timers: kept here, fired by the host when nothing else is left to run.
  const timers = new Map();
  let nextTimer = 1;
  const setTimeout = (fn, ms = 0, ...args) => {
    const id = nextTimer++;
    timers.set(id, { due: Date.now() + Math.max(0, Number(ms) || 0), fn, args });
    return id;
  };
  const clearTimeout = (id) => { timers.delete(id); };
  globalThis.__outpost_next_timer = () => {
    let best = null;
    for (const [id, t] of timers) if (!best || t.due < best[1].due) best = [id, t];
    return best ? Math.max(0, best[1].due - Date.now()) : -1;
  };
  globalThis.__outpost_fire_timer = () => {
    let best = null;
    for (const [id, t] of timers) if (!best || t.due < best[1].due) best = [id, t];
    if (!best) return;
    timers.delete(best[0]);
    if (typeof best[1].fn === 'function') best[1].fn(...best[1].args);
  };

  // fetch: the host makes the request (within the allow-list) while this context waits.
  const fetch = async (input, init = {}) => {
    const req = input instanceof Request ? new Request(input, init) : new Request(String(input), init);
    const out = native.fetch(req.method, req.url, [...req.headers], req._bytes);
    return new Response(out.body.length ? out.body : null, { status: out.status, headers: out.headers });
  };

  // The built-in `outpost` module: queries, RPC and broadcasts through Outpost's own APIs in
  // process, with the caller's token (policies apply) or as service_role.
  let callerAuth = null;
  const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  const fromHex = (s) => {
    if (!/^([0-9a-f]{2})*$/i.test(s)) return null;
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
    return out;
  };
  const local = (method, path, headers, body) => {
    const out = native.local(method, path, [...new Headers(headers)], body === undefined ? new Uint8Array(0) : toBytes(body));
    const parsed = out.json;
    return {
      status: out.status,
      headers: new Headers(out.headers),
      json: parsed,
      get text() { return native.utf8Decode(out.body); },
    };
  };
  const parseJson = (text) => { try { return JSON.parse(text); } catch { return null; } };
  const pgValue = (v) => (v === null ? 'null' : Array.isArray(v) ? `{${v.map((x) => JSON.stringify(x)).join(',')}}` : typeof v === 'object' ? JSON.stringify(v) : String(v));

  class Query {
    constructor(auth, path, method = 'GET', body) {
      this._auth = auth;
      this._path = path;
      this._method = method;
      this._body = body;
      this._params = [];
      this._prefer = [];
      this._accept = null;
      this._maybe = false;
      this._throw = false;
    }
    _set(key, value) { this._params = this._params.filter(([k]) => k !== key); this._params.push([key, value]); return this; }
    _filter(column, op, value) { this._params.push([column, `${op}.${value}`]); return this; }
    select(columns = '*', { count, head } = {}) {
      // Whitespace goes, except inside double-quoted names.
      const text = String(columns);
      let cols = text;
      if (!text.includes('"')) cols = text.replace(/\s+/g, '');
      else {
        let quoted = false;
        cols = '';
        for (const c of text) {
          if (c === '"') quoted = !quoted;
          if (quoted || (c !== ' ' && c !== '\n' && c !== '\t' && c !== '\r')) cols += c;
        }
      }
      this._set('select', cols);
      if (this._method === 'GET' || this._method === 'HEAD') { if (head) this._method = 'HEAD'; } else this._prefer.push('return=representation');
      if (count) this._prefer.push(`count=${count}`);
      return this;
    }
    insert(values, { count, defaultToNull = true } = {}) {
      this._method = 'POST';
      this._body = values;
      if (count) this._prefer.push(`count=${count}`);
      if (!defaultToNull) this._prefer.push('missing=default');
      if (Array.isArray(values)) {
        const cols = [...new Set(values.flatMap((v) => Object.keys(v)))];
        if (cols.length) this._set('columns', cols.map((c) => `"${c}"`).join(','));
      }
      return this;
    }
    upsert(values, { onConflict, ignoreDuplicates = false, count, defaultToNull = true } = {}) {
      this.insert(values, { count, defaultToNull });
      this._prefer.push(`resolution=${ignoreDuplicates ? 'ignore' : 'merge'}-duplicates`);
      if (onConflict !== undefined) this._set('on_conflict', onConflict);
      return this;
    }
    update(values, { count } = {}) { this._method = 'PATCH'; this._body = values; if (count) this._prefer.push(`count=${count}`); return this; }
    delete({ count } = {}) { this._method = 'DELETE'; if (count) this._prefer.push(`count=${count}`); return this; }
    eq(c, v) { return this._filter(c, 'eq', pgValue(v)); }
    neq(c, v) { return this._filter(c, 'neq', pgValue(v)); }
    gt(c, v) { return this._filter(c, 'gt', pgValue(v)); }
    gte(c, v) { return this._filter(c, 'gte', pgValue(v)); }
    lt(c, v) { return this._filter(c, 'lt', pgValue(v)); }
    lte(c, v) { return this._filter(c, 'lte', pgValue(v)); }
    like(c, v) { return this._filter(c, 'like', v); }
    ilike(c, v) { return this._filter(c, 'ilike', v); }
    is(c, v) { return this._filter(c, 'is', String(v)); }
    in(c, values) { return this._filter(c, 'in', `(${values.map((v) => (typeof v === 'string' && /[,()"]/.test(v) ? JSON.stringify(v) : pgValue(v))).join(',')})`); }
    contains(c, v) { return this._filter(c, 'cs', pgValue(v)); }
    containedBy(c, v) { return this._filter(c, 'cd', pgValue(v)); }
    match(query) { for (const k of Object.keys(query)) this.eq(k, query[k]); return this; }
    not(c, op, v) { return this._filter(c, `not.${op}`, v); }
    or(filters, { referencedTable } = {}) { this._params.push([referencedTable ? `${referencedTable}.or` : 'or', `(${filters})`]); return this; }
    filter(c, op, v) { return this._filter(c, op, v); }
    order(column, { ascending = true, nullsFirst, referencedTable } = {}) {
      const key = referencedTable ? `${referencedTable}.order` : 'order';
      const term = `${column}.${ascending ? 'asc' : 'desc'}${nullsFirst === undefined ? '' : nullsFirst ? '.nullsfirst' : '.nullslast'}`;
      const prev = this._params.find(([k]) => k === key);
      return this._set(key, prev ? `${prev[1]},${term}` : term);
    }
    limit(n, { referencedTable } = {}) { return this._set(referencedTable ? `${referencedTable}.limit` : 'limit', String(n)); }
    range(from, to, { referencedTable } = {}) {
      const p = referencedTable ? `${referencedTable}.` : '';
      this._set(`${p}offset`, String(from));
      return this._set(`${p}limit`, String(to - from + 1));
    }
    single() { this._accept = 'application/vnd.pgrst.object+json'; return this; }
    maybeSingle() { this._maybe = true; return this; }
    csv() { this._accept = 'text/csv'; return this; }
    throwOnError() { this._throw = true; return this; }
    then(resolve, reject) { return Promise.resolve().then(() => this._run()).then(resolve, reject); }
    catch(reject) { return this.then(undefined, reject); }
    _run() {
      const headers = { apikey: this._auth.apikey, authorization: this._auth.authorization };
      if (this._accept) headers.accept = this._accept;
      if (this._prefer.length) headers.prefer = this._prefer.join(',');
      let body;
      if (this._body !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(this._body); }
      const qs = new URLSearchParams(this._params).toString();
      const res = local(this._method, `/rest/v1/${this._path}${qs ? `?${qs}` : ''}`, headers, body);
      let data = null;
      let error = null;
      let count = null;
      const range = res.headers.get('content-range');
      if (range && range.includes('/') && !range.endsWith('/*')) count = Number(range.split('/')[1]);
      if (res.status >= 200 && res.status < 300) {
        data = this._accept === 'text/csv' ? res.text : res.json !== undefined ? res.json : res.text ? parseJson(res.text) : null;
        if (this._maybe && Array.isArray(data)) {
          if (data.length > 1) {
            error = { code: 'PGRST116', message: 'JSON object requested, multiple (or no) rows returned', details: `Results contain ${data.length} rows`, hint: null };
            data = null;
          } else data = data.length ? data[0] : null;
        }
      } else {
        error = res.json || parseJson(res.text) || { message: res.text, code: String(res.status), details: null, hint: null };
      }
      if (error && this._throw) throw Object.assign(new Error(error.message), error);
      return { data, error, count, status: res.status, statusText: '' };
    }
  }

  const makeClient = (authorization, apikey) => ({
    from: (table) => new Query({ authorization, apikey }, encodeURIComponent(table)),
    rpc: (fn, args = {}, { head = false, get = false, count } = {}) => {
      const q = new Query({ authorization, apikey }, `rpc/${encodeURIComponent(fn)}`, head ? 'HEAD' : get ? 'GET' : 'POST', head || get ? undefined : args);
      if (head || get) for (const k of Object.keys(args)) q._params.push([k, pgValue(args[k])]);
      if (count) q._prefer.push(`count=${count}`);
      return q;
    },
    // Send a broadcast on `topic` (private channels check the realtime policies).
    broadcast: async (topic, event, payload = {}, { private: isPrivate = false } = {}) => {
      const res = local('POST', '/realtime/v1/api/broadcast', { apikey, authorization, 'content-type': 'application/json' },
        JSON.stringify({ messages: [{ topic, event, payload, private: isPrivate }] }));
      if (res.status >= 200 && res.status < 300) return { error: null, status: res.status };
      return { error: parseJson(res.text) || { message: res.text }, status: res.status };
    },
  });
  const anonKey = () => native.env('SUPABASE_ANON_KEY') || '';
  const serviceKey = () => native.env('SUPABASE_SERVICE_ROLE_KEY') || '';
  // `db` acts as whoever called the function; `db.asServiceRole()` bypasses the policies.
  const callerClient = () => makeClient(callerAuth || `Bearer ${anonKey()}`, anonKey());
  const db = {
    from: (table) => callerClient().from(table),
    rpc: (...a) => callerClient().rpc(...a),
    asServiceRole: () => makeClient(`Bearer ${serviceKey()}`, serviceKey()),
    withToken: (jwt) => makeClient(`Bearer ${jwt}`, anonKey()),
  };
  const broadcast = (...a) => callerClient().broadcast(...a);

  // Inbound webhook signatures: Stripe's (and Outpost's own) `t=…,v1=…` over `t.payload`,
  // GitHub's `sha256=<hex>`, or a bare hex/base64 HMAC-SHA256 of the payload.
  const webhooks = {
    async verify({ secret, payload, signature, scheme = 'stripe', toleranceSeconds = 300, hash = 'SHA-256' } = {}) {
      if (!secret || signature === undefined || signature === null || payload === undefined) return false;
      const key = toBytes(String(secret));
      const body = toBytes(payload);
      const mac = (data) => native.hmac(hash, key, data);
      const header = String(signature);
      if (scheme === 'stripe') {
        const parts = header.split(',').map((p) => p.trim().split('='));
        const t = (parts.find(([k]) => k === 't') || [])[1];
        if (!t || !/^\d+$/.test(t)) return false;
        if (toleranceSeconds > 0 && Math.abs(Date.now() / 1000 - Number(t)) > toleranceSeconds) return false;
        const signed = new Blob([`${t}.`, body])._bytes;
        const want = mac(signed);
        return parts.filter(([k]) => k === 'v1').some(([, v]) => { const got = fromHex(v || ''); return got !== null && native.timingSafeEqual(want, got); });
      }
      if (scheme === 'github') {
        const got = header.startsWith('sha256=') ? fromHex(header.slice(7)) : null;
        return got !== null && native.timingSafeEqual(mac(body), got);
      }
      if (scheme === 'hex') { const got = fromHex(header); return got !== null && native.timingSafeEqual(mac(body), got); }
      if (scheme === 'base64') {
        let got;
        try { got = Uint8Array.from(atob(header), (c) => c.charCodeAt(0)); } catch { return false; }
        return native.timingSafeEqual(mac(body), got);
      }
      throw new TypeError(`unknown signature scheme ${scheme}: use stripe, github, hex or base64`);
    },
    // The `t=…,v1=…` header for `payload`, as Outpost's own webhooks send it.
    sign({ secret, payload, timestamp = Math.floor(Date.now() / 1000), hash = 'SHA-256' }) {
      return `t=${timestamp},v1=${hexOf(native.hmac(hash, toBytes(String(secret)), new Blob([`${timestamp}.`, toBytes(payload)])._bytes))}`;
    },
  };
  const Outpost = { db, broadcast, webhooks };

  Object.assign(globalThis, { Headers, Request, Response, URL, URLSearchParams, TextEncoder, TextDecoder, console, btoa, atob, Deno, crypto, setTimeout, clearTimeout, fetch, ReadableStream, Blob, File, FormData, CryptoKey, DOMException, Outpost });

  // Called by Outpost: pick the handler (Deno.serve or `export default { fetch }`), call it,
  // and flatten its Response for the host.
  let streamRead = null;
  globalThis.__outpost_stream_read = () => (streamRead ? streamRead() : Promise.resolve({ done: true }));
  // Between invocations in a warm context: forget the last one's handler, caller, timers and
  // stream. Whether it left nothing behind (no timers) decides if the context is reused.
  globalThis.__outpost_reset = () => {
    handler = null;
    callerAuth = null;
    streamRead = null;
    const idle = timers.size === 0;
    timers.clear();
    return idle;
  };

  globalThis.__outpost_invoke = async (exported, method, url, headers, body) => {
    const fn = handler || (exported && typeof exported.fetch === 'function' ? exported.fetch.bind(exported) : null)
      || (typeof exported === 'function' ? exported : null);
    if (!fn) throw new Error('the function registers no handler: call Deno.serve(handler) or export default { fetch }');
    const req = new Request(url, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body });
    callerAuth = req.headers.get('authorization');
    const res = await fn(req);
    if (!(res instanceof Response)) throw new TypeError('the handler must return a Response');
    if (res._stream) {
      const reader = res._stream.getReader();
      streamRead = () => reader.read().then(({ value, done }) => (done ? { done } : { done, value: toBytes(value) }));
    }
    return { status: res.status, headers: [...res.headers], body: res._bytes, stream: !!res._stream };
  };

  // A warm context serves one invocation after another (of any function), so the realm they
  // share is frozen: no caller can leave state in a global or a built-in for the next one.
  // Module scope, fresh for every invocation, is where a function keeps its state. Properties
  // code commonly sets on its own objects (an Error subclass's `name`, an object's `toString`)
  // become accessors that define the property on the object itself, as they would on an
  // unfrozen prototype.
  const overridable = (obj, prop) => {
    const d = Object.getOwnPropertyDescriptor(obj, prop);
    if (!d || !('value' in d)) return;
    const { value } = d;
    Object.defineProperty(obj, prop, {
      get() { return value; },
      set(v) {
        if (this === obj) throw new TypeError(`Cannot assign to read only property '${String(prop)}' of a built-in`);
        Object.defineProperty(this, prop, { value: v, writable: true, enumerable: true, configurable: true });
      },
      enumerable: d.enumerable,
      configurable: false,
    });
  };
  const seen = new Set();
  const harden = (o) => {
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) return;
    seen.add(o);
    Object.freeze(o);
    for (const k of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k);
      if ('value' in d) harden(d.value);
      else { harden(d.get); harden(d.set); }
    }
    harden(Object.getPrototypeOf(o));
  };
  // Called by the host for a context that will serve more than one invocation (a fresh context
  // per call has nothing to protect, and freezing costs more than the call).
  globalThis.__outpost_harden = () => {
    for (const C of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, DOMException]) {
      for (const p of ['name', 'message', 'constructor', 'toString']) overridable(C.prototype, p);
    }
    for (const p of ['constructor', 'toString', 'valueOf', 'toLocaleString']) overridable(Object.prototype, p);
    for (const C of [Function, Array, Promise, Map, Set, Date, RegExp]) {
      overridable(C.prototype, 'constructor');
      overridable(C.prototype, 'toString');
    }
    harden(globalThis);
    // Intrinsics no global names, reached through instances.
    const hidden = [async function () {}, function* () {}, async function* () {}, (function* () {})(), (async function* () {})(),
      [][Symbol.iterator](), new Map()[Symbol.iterator](), new Set()[Symbol.iterator](), ''[Symbol.iterator](), 'x'.matchAll(/x/g)];
    for (const h of hidden) harden(Object.getPrototypeOf(h));
  };
})();
