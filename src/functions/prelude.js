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

  const toBytes = (body) => {
    if (body === undefined || body === null) return new Uint8Array(0);
    if (body instanceof Uint8Array) return body;
    if (body instanceof ArrayBuffer) return new Uint8Array(body);
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (body instanceof URLSearchParams) return native.utf8Encode(body.toString());
    return native.utf8Encode(String(body));
  };

  class Body {
    _init(body) { this._bytes = toBytes(body); this.bodyUsed = false; }
    async arrayBuffer() { this.bodyUsed = true; return this._bytes.slice().buffer; }
    async text() { this.bodyUsed = true; return native.utf8Decode(this._bytes); }
    async json() { return JSON.parse(await this.text()); }
    async formData() {
      const params = new URLSearchParams(await this.text());
      return { get: (k) => params.get(k), getAll: (k) => params.getAll(k), has: (k) => params.has(k), entries: () => params.entries() };
    }
  }

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      this.url = input instanceof Request ? input.url : String(input);
      this.method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
      this.headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
      this._init(init.body !== undefined ? init.body : input instanceof Request ? input._bytes : undefined);
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
      this._init(body);
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
  const crypto = {
    randomUUID: () => native.uuid(),
    getRandomValues: (arr) => { const r = native.random(arr.length); for (let i = 0; i < arr.length; i++) arr[i] = r[i]; return arr; },
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

  Object.assign(globalThis, { Headers, Request, Response, URL, URLSearchParams, TextEncoder, TextDecoder, console, btoa, atob, Deno, crypto, setTimeout, clearTimeout, fetch });

  // Called by Outpost: pick the handler (Deno.serve or `export default { fetch }`), call it,
  // and flatten its Response for the host.
  globalThis.__outpost_invoke = async (exported, method, url, headers, body) => {
    const fn = handler || (exported && typeof exported.fetch === 'function' ? exported.fetch.bind(exported) : null)
      || (typeof exported === 'function' ? exported : null);
    if (!fn) throw new Error('the function registers no handler: call Deno.serve(handler) or export default { fetch }');
    const req = new Request(url, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body });
    const res = await fn(req);
    if (!(res instanceof Response)) throw new TypeError('the handler must return a Response');
    return { status: res.status, headers: [...res.headers], body: res._bytes };
  };
})();
