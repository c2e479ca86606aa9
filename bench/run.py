"""Benchmark flask_ioengine against Flask-SocketIO (eventlet) and Node socket.io 4.8.

    bench/.venv/bin/python bench/run.py [--quick] [--scenarios echo_ws,polling,...]
                                        [--servers ioengine,flask_socketio,node]
                                        [--rounds N] [--deflate [off|on|both]] [--profile [SCENARIO]]

(``make bench`` sets up bench/.venv and bench/node_modules, then runs this; pass options
with ``make bench ARGS="--quick"``.)

For each scenario, for each round, for each server (the order rotates every round, so no
server is always first): start the server pinned to core 0 (``taskset -c 0``), the load
generator (bench/load/*.js, the official socket.io-client) pinned to core 1, wait for the
server's READY (bounded), run, collect, stop both by PID. The server's RSS and CPU time are
read from /proc/<pid> (the same method for the three servers) at the points the
generator marks. The median of the rounds is reported, per metric.

Prints a table, ``ratio`` lines (flask_ioengine / Flask-SocketIO, flask_ioengine / Node)
and the issue's targets, and writes bench/results/latest.json (logs in bench/results/logs/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
VENV_PY = BENCH / ".venv" / "bin" / "python"
PY_SPY = BENCH / ".venv" / "bin" / "py-spy"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

UNSUPPORTED_EXIT = 3  # bench/servers/common.py: the server does not support an option

SERVERS: dict[str, dict[str, Any]] = {
    "ioengine": {"label": "flask_ioengine", "cmd": ["{py}", "servers/ioengine_server.py"]},
    "flask_socketio": {"label": "Flask-SocketIO", "cmd": ["{py}", "servers/flask_socketio_server.py"]},
    "node": {"label": "Node socket.io", "cmd": ["node", "servers/node_server.js"]},
}


@dataclass
class Scenario:
    name: str
    script: str
    what: str
    cfg: dict[str, Any]
    quick: dict[str, Any]
    metric: str          # headline metric key in the collected result
    unit: str
    higher_is_better: bool = True
    second: str | None = None      # secondary metric key
    second_unit: str = ""
    ping_interval: float | None = None
    ping_interval_quick: float | None = None
    websocket: bool = True
    extra_ratios: list[tuple[str, str, bool]] = field(default_factory=list)  # (key, label, higher better)
    ratio_name: str | None = None  # the headline ratio's name (default: the scenario's)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("echo_ws", "echo.js", "echo over WebSocket, 50 clients, ack per message",
             {"transport": "websocket", "clients": 50, "duration": 10, "warmup": 2, "size": 32},
             {"duration": 3, "warmup": 1},
             "acks_per_s", "acks/s", second="p99_ms", second_unit="ms p99"),
    Scenario("polling", "echo.js", "echo over HTTP long-polling only, 20 clients",
             {"transport": "polling", "clients": 20, "duration": 10, "warmup": 2, "size": 32},
             {"duration": 3, "warmup": 1},
             "acks_per_s", "acks/s", second="p99_ms", second_unit="ms p99", websocket=False),
    Scenario("broadcast", "broadcast.js", "room broadcast, 1000 clients x 200 messages of 100 B",
             {"clients": 1000, "messages": 200, "size": 100, "concurrency": 50, "limit": 60},
             {"clients": 300, "messages": 50, "limit": 30},
             "deliveries_per_s", "deliv/s", second="first_ms", second_unit="ms to 1st"),
    Scenario("connects", "connects.js", "1000 WebSocket connects (50 in flight), then held",
             {"clients": 1000, "concurrency": 50, "settle": 1},
             {"clients": 300},
             "connects_per_s", "conn/s", second="rss_kb_per_conn", second_unit="KB RSS/conn",
             extra_ratios=[("rss_kb_per_conn", "connects_rss", False)]),
    Scenario("idle", "connects.js",
             "10,000 idle WebSockets held for ~2 ping intervals (ping_interval 5 s)",
             {"clients": 10000, "concurrency": 100, "settle": 2, "idle": 11},
             {"clients": 1000, "idle": 4.5},
             "rss_kb_per_conn", "KB RSS/conn", higher_is_better=False,
             second="server_cpu_pct", second_unit="% srv CPU",
             ping_interval=5.0, ping_interval_quick=2.0, ratio_name="idle_rss",
             extra_ratios=[("server_cpu_pct", "idle_cpu", False)]),
]}

#: the issue's targets; checked against full runs (not --quick, which is a smoke test)
TARGETS = [
    ("echo_ws", "acks/s >= 5x Flask-SocketIO", lambda r: _ratio(r, "echo_ws", "acks_per_s", "flask_socketio"), ">=", 5.0),
    ("echo_ws", "p99 < 10 ms", lambda r: _get(r, "echo_ws", "ioengine", "p99_ms"), "<", 10.0),
    ("polling", "acks/s >= 2x Flask-SocketIO", lambda r: _ratio(r, "polling", "acks_per_s", "flask_socketio"), ">=", 2.0),
    ("broadcast", "deliveries/s >= 1.5x Flask-SocketIO", lambda r: _ratio(r, "broadcast", "deliveries_per_s", "flask_socketio"), ">=", 1.5),
    ("broadcast", "first delivery <= 50 ms after the emit", lambda r: _get(r, "broadcast", "ioengine", "first_ms"), "<=", 50.0),
    ("connects", "<= 20 KB RSS per WebSocket (1000 held)", lambda r: _get(r, "connects", "ioengine", "rss_kb_per_conn"), "<=", 20.0),
    ("idle", "<= 20 KB RSS per idle WebSocket", lambda r: _get(r, "idle", "ioengine", "rss_kb_per_conn"), "<=", 20.0),
    ("idle", "heartbeats of 10,000 idle sockets < 10% of a core", lambda r: _get(r, "idle", "ioengine", "server_cpu_pct"), "<", 10.0),
]


def _get(medians: dict, scen: str, server: str, key: str) -> float | None:
    v = medians.get(scen, {}).get(server, {}).get(key)
    return v if isinstance(v, (int, float)) else None


def _ratio(medians: dict, scen: str, key: str, other: str) -> float | None:
    a, b = _get(medians, scen, "ioengine", key), _get(medians, scen, other, key)
    if a is None or not b:
        return None
    return a / b


# -- processes and /proc ----------------------------------------------------------------------

def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_sample(pid: int) -> dict[str, float] | None:
    """CPU seconds (user+system, all threads) and RSS (KB) of ``pid``, now."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    rss_kb = next((int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:")), 0)
    return {"t": time.monotonic(), "cpu_s": (utime + stime) / CLK_TCK, "rss_kb": float(rss_kb)}


def listen_drops() -> int | None:
    """TcpExt ListenDrops from /proc/net/netstat: SYNs or handshakes dropped because an
    accept queue was full (machine-wide in this network namespace)."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/netstat").read_text().splitlines()
                 if ln.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1], strict=False))["ListenDrops"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def stop(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """Stop a process we started, by its PID (its own session: the group is its own)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


class LineReader:
    """Lines of a pipe through a thread, so every read has a deadline."""

    def __init__(self, stream: Any, copy_to: Any = None) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.copy_to = copy_to

        def pump() -> None:
            for line in stream:
                if self.copy_to:
                    self.copy_to.write(line)
                    self.copy_to.flush()
                self.q.put(line.rstrip("\n"))
            self.q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def get(self, timeout: float) -> str | None:
        """The next line; None at EOF; raises queue.Empty on timeout."""
        return self.q.get(timeout=max(0.0, timeout))


class Pinning:
    def __init__(self, enabled: bool) -> None:
        self.taskset = shutil.which("taskset")
        ncpu = os.cpu_count() or 1
        self.enabled = enabled and self.taskset is not None and ncpu >= 2
        if not enabled:
            self.note = "pinning disabled (--no-pin): server and generator share all cores"
        elif self.taskset is None:
            self.note = "taskset not found: running UNPINNED (server and generator may share a core)"
        elif ncpu < 2:
            self.note = f"only {ncpu} core: running UNPINNED"
        else:
            self.note = "server pinned to core 0, load generator to core 1 (taskset)"

    def wrap(self, core: int, cmd: list[str]) -> list[str]:
        return [self.taskset, "-c", str(core), *cmd] if self.enabled and self.taskset else cmd


# -- one measurement ----------------------------------------------------------------------------

#: polling clients keep their HTTP connections alive (``--no-keepalive`` turns it off)
KEEPALIVE = [True]


def start_server(name: str, port: int, ping: float | None, deflate: bool, pin: Pinning,
                 log_path: Path, extra: list[str] | None = None) -> tuple[subprocess.Popen | None, str | None]:
    """Start server ``name``; returns (proc, None) once READY, or (None, why) if it could not."""
    py = str(VENV_PY if VENV_PY.exists() else Path(sys.executable))
    cmd = [c.format(py=py) for c in SERVERS[name]["cmd"]] + ["--port", str(port)]
    if ping:
        cmd += ["--ping-interval", str(ping)]
    if deflate:
        cmd += ["--deflate"]
    cmd += extra or []
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore",
               NODE_PATH=str(BENCH / "node_modules"))
    log = open(log_path, "w")
    proc = subprocess.Popen(pin.wrap(0, cmd), cwd=BENCH, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    reader = LineReader(proc.stdout, copy_to=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            line = reader.get(deadline - time.monotonic())
        except queue.Empty:
            stop(proc)
            return None, "no READY within 30 s"
        if line is None:
            proc.wait(5)
            if proc.returncode == UNSUPPORTED_EXIT:
                return None, "n/a"
            return None, f"exited with {proc.returncode} before READY (see {log_path.name})"
        if line.startswith("UNSUPPORTED"):
            proc.wait(5)
            return None, "n/a"
        if line.startswith("READY"):
            break
    # READY is printed as the server starts serving: check that it accepts connections
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, None
        except OSError:
            time.sleep(0.05)
    stop(proc)
    return None, "not accepting connections after READY"


def scan_log(path: Path) -> dict[str, Any]:
    """Errors a server logged: tracebacks and ERROR/Exception lines (the first few kept)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    lines = text.splitlines()
    bad = [ln for ln in lines if "Traceback" in ln or " ERROR " in ln or ln.startswith("ERROR")
           or "Error:" in ln or "Exception" in ln]
    return {"server_error_lines": len(bad), "server_error_sample": bad[:5]} if bad else {}


def run_one(scen: Scenario, server: str, rnd: int, opts: argparse.Namespace, pin: Pinning,
            deflate: bool, profile: str | None = None) -> dict[str, Any]:
    """One server x one scenario x one round: the generator's RESULT plus /proc metrics."""
    tag = f"{scen.name}{'-deflate' if deflate else ''}-{server}-r{rnd}"
    LOGS.mkdir(parents=True, exist_ok=True)
    srv_log = LOGS / f"{tag}.server.log"
    gen_log = LOGS / f"{tag}.gen.log"
    if deflate and not scen.websocket:
        return {"status": "n/a", "why": "permessage-deflate is WebSocket only"}
    port = free_port()
    ping = scen.ping_interval_quick if opts.quick and scen.ping_interval_quick else scen.ping_interval
    proc, why = start_server(server, port, ping, deflate, pin, srv_log)
    if proc is None:
        return {"status": "n/a" if why == "n/a" else "error",
                "why": "server does not support permessage-deflate" if why == "n/a" else why}
    cfg = dict(scen.cfg)
    if opts.quick:
        cfg.update(scen.quick)
    cfg.update(url=f"http://127.0.0.1:{port}", deflate=deflate, keepAlive=KEEPALIVE[0],
               localAddresses=[f"127.0.0.{i}" for i in range(1, 5)])
    if ping:
        cfg["pingInterval"] = ping
    spy = None
    out: dict[str, Any] = {"status": "ok", "round": rnd, "server": server,
                           "loadavg_1m_at_start": os.getloadavg()[0]}
    samples: dict[str, dict[str, float]] = {}
    drops0 = listen_drops()
    base = proc_sample(proc.pid)
    if base:
        samples["ready"] = base
    gen = None
    try:
        if profile:
            spy = start_profiler(proc.pid, profile, cfg, pin)
        gen = subprocess.Popen(
            pin.wrap(1, ["node", f"load/{scen.script}", json.dumps(cfg)]), cwd=BENCH,
            env=dict(os.environ, NODE_PATH=str(BENCH / "node_modules")),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(gen_log, "w"),
            text=True, start_new_session=True)
        reader = LineReader(gen.stdout)
        limit = time.monotonic() + opts.scenario_timeout
        result = None
        while True:
            try:
                line = reader.get(limit - time.monotonic())
            except queue.Empty:
                out.update(status="error", why=f"generator over {opts.scenario_timeout} s")
                break
            if line is None:
                break
            if line.startswith("@mark ") or line.startswith("@hold "):
                s = proc_sample(proc.pid)
                if s:
                    samples[line.split(" ", 1)[1]] = s
                if line.startswith("@hold "):
                    assert gen.stdin is not None
                    gen.stdin.write("go\n")
                    gen.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
        if gen.poll() is None:
            try:
                gen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if result is None and out["status"] == "ok":
            out.update(status="error", why=f"no RESULT from the generator (see {gen_log.name})")
        elif result is not None and "error" in result:
            out.update(status="error", why=result["error"].splitlines()[0][:200])
        if result:
            out["gen_result"] = result
    finally:
        stop(gen)
        if spy is not None:
            finish_profiler(spy)
        alive = proc.poll() is None
        stop(proc)
    if not alive:
        out["server_died"] = True
        out.update(status="error", why=f"server exited with {proc.returncode} during the run")
    out.update(scan_log(srv_log))
    drops1 = listen_drops()
    if drops0 is not None and drops1 is not None:
        out["listen_drops"] = drops1 - drops0
    out["samples"] = samples
    if out.get("gen_result"):
        out.update(derive(scen, out["gen_result"], samples))
    if deflate and out.get("deflate_negotiated") is False:
        out.update(status="n/a", why="permessage-deflate offered but not negotiated")
    return out


def _cpu_pct(samples: dict, a: str, b: str) -> float | None:
    if a in samples and b in samples:
        s0, s1 = samples[a], samples[b]
        dt = s1["t"] - s0["t"]
        if dt > 0:
            return 100.0 * (s1["cpu_s"] - s0["cpu_s"]) / dt
    return None


def derive(scen: Scenario, r: dict[str, Any], samples: dict) -> dict[str, Any]:
    """The flat metrics of one run, from the generator's RESULT and the /proc samples."""
    d: dict[str, Any] = {"gen_cpu_pct": (r.get("gen") or {}).get("cpu_pct"),
                         "deflate_negotiated": r.get("deflate_negotiated")}
    problems = []
    if r.get("connect_errors"):
        problems.append(f"connect errors {r['connect_errors']}")
    if r.get("disconnects"):
        problems.append(f"{r['disconnects']} unexpected disconnects {r.get('disconnect_reasons', '')}")
    if scen.script == "echo.js":
        d["acks_per_s"] = r["acks_per_s"]
        d["p50_ms"] = r["latency_ms"]["p50"]
        d["p99_ms"] = r["latency_ms"]["p99"]
        d["max_ms"] = r["latency_ms"]["max"]
        cpu = _cpu_pct(samples, "start", "end")
        d["server_cpu_pct"] = cpu
        if cpu is not None and r["acks_per_s"]:
            d["server_us_per_op"] = cpu / 100 * 1e6 / r["acks_per_s"]
        for k in ("mismatches", "stalled", "unanswered_at_end"):
            if r.get(k):
                problems.append(f"{k} {r[k]}")
    elif scen.script == "broadcast.js":
        d["deliveries_per_s"] = r["deliveries_per_s"]
        d["first_ms"] = r["first_ms"]
        d["last_ms"] = r["last_ms"]
        d["ack_ms"] = r["ack_ms"]
        cpu = _cpu_pct(samples, "broadcast_start", "broadcast_end")
        d["server_cpu_pct"] = cpu
        if cpu is not None and r["deliveries_per_s"]:
            d["server_us_per_op"] = cpu / 100 * 1e6 / r["deliveries_per_s"]
        if not r.get("complete"):
            problems.append(f"incomplete: {r['deliveries']}/{r['expected']} delivered")
        if not r.get("warmup_complete"):
            problems.append("warm-up broadcast incomplete")
        if r.get("bad_payloads"):
            problems.append(f"bad payloads {r['bad_payloads']}")
    else:  # connects.js: connects and idle
        d["connects_per_s"] = r["connects_per_s"]
        d["connect_p99_ms"] = r["connect_ms"]["p99"]
        d["connected"] = r["connected"]
        end = "idle_end" if "idle_end" in samples else "held"
        if "baseline" in samples and end in samples and r["connected"]:
            d["rss_kb_per_conn"] = (samples[end]["rss_kb"] - samples["baseline"]["rss_kb"]) / r["connected"]
            d["rss_mb"] = samples[end]["rss_kb"] / 1024
        if r.get("idle_s"):
            d["server_cpu_pct"] = _cpu_pct(samples, "held", "idle_end")
            d["pings"] = r["pings"]
            d["expected_pings"] = r["expected_pings"]
            if r["expected_pings"] and r["pings"] < 0.9 * r["expected_pings"]:
                problems.append(f"heartbeats: {r['pings']} pings seen, ~{r['expected_pings']} expected")
        else:
            d["server_cpu_pct"] = _cpu_pct(samples, "baseline", "held")
            if "baseline" in samples and "held" in samples and r["connected"]:
                cpu_s = samples["held"]["cpu_s"] - samples["baseline"]["cpu_s"]
                d["server_us_per_op"] = cpu_s * 1e6 / r["connected"]  # CPU per connect
        if r["connected"] < r["clients"]:
            problems.append(f"only {r['connected']}/{r['clients']} connected")
        if r.get("still_connected") is not None and r["still_connected"] < r["connected"]:
            problems.append(f"{r['connected'] - r['still_connected']} lost while held")
    gen_cpu = d["gen_cpu_pct"]
    if isinstance(gen_cpu, (int, float)) and gen_cpu >= 90:
        problems.append(f"generator saturated ({gen_cpu:.0f}% of its core): the server may be faster than measured")
    d["problems"] = problems
    return d


# -- profiling -------------------------------------------------------------------------------------

def start_profiler(pid: int, profile: str, cfg: dict[str, Any], pin: Pinning) -> dict[str, Any]:
    """py-spy on ``pid`` until the generator is done (stopped with SIGINT, on which py-spy
    writes its output); ``profile`` is "<name>.<format>" (raw: collapsed stacks, or
    flamegraph: an SVG)."""
    out_base, fmt = profile.rsplit(".", 1)
    path = RESULTS / (f"{out_base}.collapsed.txt" if fmt == "raw" else f"{out_base}.svg")
    # --nonblocking: sample without stopping the server (the default pauses it per sample);
    # py-spy shares the generator's core, not the server's. One py-spy at a time.
    proc = subprocess.Popen(
        pin.wrap(1, [str(PY_SPY), "record", "--pid", str(pid), "--rate", "250",
                     "--nonblocking", "--format", fmt, "-o", str(path)]),
        stdout=subprocess.DEVNULL, stderr=open(LOGS / f"{out_base}.{fmt}.py-spy.log", "w"),
        start_new_session=True)
    time.sleep(0.5)  # let py-spy attach before the load starts
    return {"procs": [proc], "path": path}


def finish_profiler(spy: dict[str, Any]) -> None:
    for p in spy["procs"]:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGINT)  # py-spy: stop sampling and write the output
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            stop(p)


def summarize_profile(raw: Path, top: int = 20) -> str:
    """Top functions by own (leaf) samples and by inclusive samples, from collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples (py-spy, 250 Hz, idle excluded)", "", "own time by package:"]
    by_pkg: dict[str, int] = {}
    for f, n in own.items():
        by_pkg[_package(f)] = by_pkg.get(_package(f), 0) + n
    for pkg, n in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"  {100 * n / total:5.1f}%  {pkg}")
    lines += ["", "top functions by own time:"]
    for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {f}")
    # the request-handling chain every WebSocket sits under says nothing: leave out the
    # frames that are on (nearly) every stack of the connection's green thread
    ours = {f: n for f, n in incl.items() if "flask_ioengine/" in f}
    chain = max(ours.values(), default=0)
    lines += ["", "top flask_ioengine functions by inclusive time (the always-present "
              "request/handshake chain left out):"]
    for f, n in sorted(ours.items(), key=lambda kv: -kv[1]):
        if n >= 0.97 * chain:
            continue
        lines.append(f"  {100 * n / total:5.1f}%  {f}")
        if len(lines) > 60:
            break
    return "\n".join(lines) + "\n"


def _package(frame: str) -> str:
    """"func (flask_ioengine/engineio/x.py)" -> "flask_ioengine/engineio"; "(json/x.py)" -> "json"."""
    file = frame.rpartition(" (")[2].rstrip(")")
    parts = file.split("/")
    if parts[0] == "flask_ioengine" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else file


def _frame_name(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (path/to/file.py)": aggregate over lines
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({file})" if file else name


# -- the whole run ----------------------------------------------------------------------------------

def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        statuses = {r.get("status") for r in runs}
        status = "n/a" if statuses == {"n/a"} else "error"
        return {"status": status, "why": "; ".join(sorted({str(r.get("why")) for r in runs}))}
    med: dict[str, Any] = {"status": "ok", "rounds_ok": len(ok), "rounds": len(runs)}
    keys = {k for r in ok for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for k in sorted(keys - {"round"}):
        vals = [r[k] for r in ok if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        if vals:
            med[k] = statistics.median(vals)
    problems = sorted({p for r in runs for p in r.get("problems", [])})
    problems += [f"round {r.get('round')}: {r.get('status')}: {r.get('why')}" for r in runs if r.get("status") != "ok"]
    if any(r.get("server_error_lines") for r in runs):
        n = sum(r.get("server_error_lines", 0) for r in runs)
        problems.append(f"server logged {n} error line(s), e.g. "
                        + next(r["server_error_sample"][0] for r in runs if r.get("server_error_sample")))
    drops = [r.get("listen_drops") for r in ok if r.get("listen_drops")]
    if drops:
        problems.append(f"accept queue overflowed: {sum(drops)} ListenDrops in {len(drops)} round(s) "
                        "(SYNs dropped, retried by the client after 1 s, 3 s: see connect_ms)")
    med["problems"] = problems
    return med


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if digits == 0 and abs(v) < 100:
            return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_table(medians: dict, scen_names: list[str], server_names: list[str], suffix: str) -> None:
    hdr = f"{'scenario':<18}{'server':<16}{'result':>14} {'unit':<12}{'2nd':>10} {'unit':<12}{'srv CPU%':>9}{'srv us/op':>10}{'gen CPU%':>9}  notes"
    print(hdr)
    print("-" * len(hdr))
    for sn in scen_names:
        scen = SCENARIOS[sn]
        for sv in server_names:
            m = medians.get(sn + suffix, {}).get(sv, {})
            label = SERVERS[sv]["label"]
            if m.get("status") != "ok":
                print(f"{sn + suffix:<18}{label:<16}{m.get('status', '-'):>14} {'':<12}{'':>10} {'':<12}{'':>9}{'':>10}{'':>9}  {m.get('why', '')}")
                continue
            notes = []
            if m.get("rounds_ok") != m.get("rounds"):
                notes.append(f"{m.get('rounds_ok')}/{m.get('rounds')} rounds ok")
            notes += m.get("problems", [])
            second = m.get(scen.second) if scen.second else None
            print(f"{sn + suffix:<18}{label:<16}{fmt(m.get(scen.metric)):>14} {scen.unit:<12}"
                  f"{fmt(second):>10} {scen.second_unit:<12}{fmt(m.get('server_cpu_pct')):>9}"
                  f"{fmt(m.get('server_us_per_op')):>10}{fmt(m.get('gen_cpu_pct')):>9}  {'; '.join(notes)}")
    print()


def ratio_lines(medians: dict, scen_names: list[str], server_names: list[str], suffix: str) -> list[str]:
    out = []
    if "ioengine" not in server_names:
        return out
    for sn in scen_names:
        scen = SCENARIOS[sn]
        pairs = [(scen.metric, scen.ratio_name or sn, scen.higher_is_better), *scen.extra_ratios]
        if scen.name in ("echo_ws", "polling", "broadcast", "connects"):
            pairs.append(("server_us_per_op", f"{sn}_cpu_per_op", False))
        for key, name, higher in pairs:
            for other in ("flask_socketio", "node"):
                if other not in server_names:
                    continue
                r = _ratio(medians, sn + suffix, key, other)
                text = "n/a" if r is None else f"{r:.2f}x"
                better = "" if r is None else ("  (higher is better)" if higher else "  (lower is better)")
                out.append(f"ratio {name}{suffix} ioengine/{other} = {text}{better}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round, short durations, fewer clients: a smoke test")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: " + ",".join(SERVERS))
    ap.add_argument("--rounds", type=int, default=None, help="rounds per server (default 3, 1 with --quick)")
    ap.add_argument("--no-keepalive", action="store_true",
                    help="polling clients open a TCP connection per request (xmlhttprequest-ssl's "
                         "default in Node) instead of keeping connections alive like a browser")
    ap.add_argument("--deflate", nargs="?", const="on", default="off", choices=["off", "on", "both"],
                    help="WebSocket permessage-deflate: off (default), on, or both")
    ap.add_argument("--profile", nargs="?", const="echo_ws", default=None, choices=list(SCENARIOS),
                    help="also run a scenario (default echo_ws) against flask_ioengine under "
                         "py-spy; writes bench/results/profile-SCENARIO.{svg,collapsed.txt,top.txt}")
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--scenario-timeout", type=float, default=300.0, help="seconds per run (bounded)")
    ap.add_argument("--out", default=str(RESULTS / "latest.json"))
    opts = ap.parse_args()
    KEEPALIVE[0] = not opts.no_keepalive

    scen_names = [s for s in opts.scenarios.split(",") if s]
    server_names = [s for s in opts.servers.split(",") if s]
    for s in scen_names:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    for s in server_names:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r}")
    rounds = opts.rounds or (1 if opts.quick else 3)
    deflate_modes = {"off": [False], "on": [True], "both": [False, True]}[opts.deflate]
    nofile = raise_nofile()
    pin = Pinning(not opts.no_pin)
    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)

    env = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(), "python": platform.python_version(),
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg(), "pinning": pin.note,
        "nofile": nofile, "quick": opts.quick, "rounds": rounds, "deflate": opts.deflate,
        "polling_keepalive": KEEPALIVE[0],
        "versions": versions(),
    }
    print(f"bench: {pin.note}")
    print(f"bench: {rounds} round(s), median reported; load average at start {env['loadavg_at_start']}"
          f" on {os.cpu_count()} cores (other work on this machine skews results: compare ratios"
          f" from one run, not absolute numbers across runs)")
    if opts.quick:
        print("bench: --quick: short runs and fewer clients, a smoke test of the harness; "
              "the numbers are NOT comparable to the issue's targets")
    sys.stdout.flush()

    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    t_start = time.monotonic()
    for deflate in deflate_modes:
        suffix = "+deflate" if deflate else ""
        for sn in scen_names:
            scen = SCENARIOS[sn]
            raw.setdefault(sn + suffix, {sv: [] for sv in server_names})
            for rnd in range(1, rounds + 1):
                k = (rnd - 1) % len(server_names)
                order = server_names[k:] + server_names[:k]  # alternate who goes first
                for sv in order:
                    t0 = time.monotonic()
                    r = run_one(scen, sv, rnd, opts, pin, deflate)
                    raw[sn + suffix][sv].append(r)
                    head = r.get(scen.metric)
                    print(f"  {sn + suffix:<18} round {rnd} {SERVERS[sv]['label']:<16} "
                          f"{r['status']:<6} {fmt(head) if head is not None else r.get('why', '')}"
                          f"{' ' + scen.unit if head is not None else ''}"
                          f"  ({time.monotonic() - t0:.0f} s)", flush=True)
                    time.sleep(1.0)  # let the kernel reap sockets between runs

    medians = {key: {sv: median_of(runs) for sv, runs in per.items()} for key, per in raw.items()}

    profile_text = None
    if opts.profile:
        pn = opts.profile
        base = f"profile-{pn}"
        print(f"bench: profiling flask_ioengine under {pn} with py-spy ...", flush=True)
        for stale in ("collapsed.txt", "svg", "top.txt"):
            (RESULTS / f"{base}.{stale}").unlink(missing_ok=True)
        # two runs: py-spy writes one format per run, and two at once would slow the load
        r = run_one(SCENARIOS[pn], "ioengine", 0, opts, pin, False, profile=f"{base}.raw")
        run_one(SCENARIOS[pn], "ioengine", 0, opts, pin, False, profile=f"{base}.flamegraph")
        raw_path = RESULTS / f"{base}.collapsed.txt"
        if raw_path.exists():
            scen = SCENARIOS[pn]
            profile_text = (f"{pn} under py-spy: {fmt(r.get(scen.metric))} {scen.unit} "
                            f"(profiling slows the server; flame graph: bench/results/{base}.svg)\n"
                            + summarize_profile(raw_path))
            (RESULTS / f"{base}.top.txt").write_text(profile_text)
        else:
            profile_text = f"py-spy wrote no profile (see bench/results/logs/{base}.*.py-spy.log)\n"

    print()
    print(f"bench results ({'quick' if opts.quick else 'full'}, median of {rounds} round(s), "
          f"{time.monotonic() - t_start:.0f} s)")
    print()
    all_lines = []
    for deflate in deflate_modes:
        suffix = "+deflate" if deflate else ""
        print_table(medians, scen_names, server_names, suffix)
        all_lines += ratio_lines(medians, scen_names, server_names, suffix)
    for line in all_lines:
        print(line)
    print()
    checks = []
    if False in deflate_modes and "ioengine" in server_names:
        for sn, what, get, op, limit in TARGETS:
            if sn not in scen_names:
                continue
            v = get(medians)
            if v is None:
                verdict = "n/a"
            else:
                ok = v >= limit if op == ">=" else v < limit if op == "<" else v <= limit
                verdict = "PASS" if ok else "FAIL"
            suffix_q = " (quick run: indicative only)" if opts.quick else ""
            checks.append({"scenario": sn, "target": what, "value": v, "verdict": verdict})
            print(f"target {sn}: {what}: {fmt(v) if v is not None else '-'} -> {verdict}{suffix_q}")
        print()
    if profile_text:
        print(profile_text)

    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": env, "scenarios": {n: SCENARIOS[n].what for n in scen_names},
                               "medians": medians, "ratios": all_lines, "targets": checks,
                               "runs": raw, "profile": profile_text}, indent=1, default=str))
    print(f"bench: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
          f" (logs in {LOGS.relative_to(ROOT)})")
    return 0


def versions() -> dict[str, str]:
    out = {}
    py = str(VENV_PY if VENV_PY.exists() else Path(sys.executable))
    code = ("import importlib.metadata as m\n"
            "for n in ('flask_ioengine','Flask-SocketIO','python-socketio','python-engineio',"
            "'eventlet','Flask'):\n"
            "    try: print(n, m.version(n))\n"
            "    except Exception: print(n, '-')\n")
    try:
        res = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=30)
        for line in res.stdout.splitlines():
            k, _, v = line.partition(" ")
            out[k] = v
    except (OSError, subprocess.TimeoutExpired):
        pass
    for pkg in ("socket.io", "socket.io-client"):
        try:
            out[pkg] = json.loads((BENCH / "node_modules" / pkg / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            out[pkg] = "-"
    return out


if __name__ == "__main__":
    sys.exit(main())
