"""Soak: slow consumers, a flood, connect/disconnect churn and clients that vanish, against
flask_ioengine, python-socketio (eventlet) and Node socket.io 4.8, side by side.

    bench/.venv/bin/python soak/run.py [--quick] [--servers ioengine,pysio,node]
                                       [--scenarios churn_ws,churn_polling,slow,flood,abrupt]

(``make soak`` runs bench/setup.sh — bench/.venv and bench/node_modules — then this; pass
options with ``make soak ARGS="--quick"``.)

Method (the one of bench/run.py): every scenario starts a fresh server pinned to core 0
(``taskset -c 0``) and its clients pinned to core 1, all on 127.0.0.1; the server is
measured from outside, from /proc/<pid>/status (VmRSS) and /proc/<pid>/fd (open fds),
at the moments the clients mark (``@hold``/``@mark`` lines); what the server saw
(disconnect reasons per client role, flood events counted in order, broadcast progress) is
read from its ``GET /stats``. The clients are the same for the three servers: the official
``socket.io-client`` (soak/clients/*.js) and raw WebSocket clients on plain sockets
(soak/rawclients.py) for the clients that never read or vanish with a TCP reset. Every
process is stopped by its PID; every wait is bounded.

Prints one table (the figures of each server side by side, and whether flask_ioengine
meets each goal) and writes soak/results/latest.json; logs go to soak/results/logs/.

tests/test_soak_short.py imports this module and runs short versions of the scenarios
against flask_ioengine only, with the project's .venv and node_modules.
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
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOAK = Path(__file__).resolve().parent
ROOT = SOAK.parent
RESULTS = SOAK / "results"
BENCH_PY = ROOT / "bench" / ".venv" / "bin" / "python"
BENCH_NODE_MODULES = ROOT / "bench" / "node_modules"

SERVERS: dict[str, dict[str, Any]] = {
    "ioengine": {"label": "flask_ioengine", "cmd": ["{py}", "servers/ioengine_server.py"]},
    "pysio": {"label": "python-socketio", "cmd": ["{py}", "servers/pysio_server.py"]},
    "node": {"label": "Node socket.io", "cmd": ["node", "servers/node_server.js"]},
}

#: Short pings for every scenario (the vanished clients are noticed by the transport within
#: ping interval + timeout), except the slow consumers: a client that never reads cannot
#: answer a ping, and that scenario is about the write buffer, not the heartbeat.
SHORT_PING = (1.0, 1.0)
LONG_PING = (60.0, 60.0)

FULL: dict[str, dict[str, Any]] = {
    "churn_ws": {"cycles": 20000, "warm": 2000, "concurrency": 20},
    "churn_polling": {"cycles": 2000, "concurrency": 10},
    "slow": {"stalled": 200, "healthy": 20, "n": 5000, "size": 1024,
             "max_write_buffer": 262144},
    "flood": {"echo_clients": 20, "n": 100000, "before_s": 5.0, "pace_ms": 20},
    "abrupt": {"clients": 1000},
}
QUICK: dict[str, dict[str, Any]] = {
    "churn_ws": {"cycles": 2000, "warm": 500, "concurrency": 20},
    "churn_polling": {"cycles": 300, "concurrency": 10},
    "slow": {"stalled": 50, "healthy": 5, "n": 5000, "size": 1024,
             "max_write_buffer": 262144},
    "flood": {"echo_clients": 20, "n": 20000, "before_s": 3.0, "pace_ms": 20},
    "abrupt": {"clients": 300},
}
SCENARIO_NAMES = list(FULL)

#: The issue's baselines, measured earlier on this machine (shown for reference).
BASELINES = {
    "node": {"churn_ws": "113-249 KB/1k", "churn_polling": "0 fds", "slow": "+480 MB; 0 of 200",
             "flood": "p99 3-4 -> 11-27 ms", "abrupt": "0.25 s"},
    "pysio": {"churn_ws": "~10 MB/1k", "churn_polling": "23-35 fds", "slow": "+25 MB; 0 of 200",
              "flood": "p99 8 -> 474-3,682 ms", "abrupt": "2 s"},
}


# -- processes and /proc ---------------------------------------------------------------------

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


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def stop(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """Stop a process we started, by its PID (started in a session of its own)."""
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
    """Lines of a pipe through a thread, so that every read has a deadline."""

    def __init__(self, stream: Any, copy_to: Any = None) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in stream:
                if copy_to is not None:
                    copy_to.write(line)
                    copy_to.flush()
                self.q.put(line.rstrip("\n"))
            self.q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def get(self, timeout: float) -> str | None:
        """The next line; None at EOF; raises queue.Empty on timeout."""
        return self.q.get(timeout=max(0.0, timeout))


class Pinning:
    def __init__(self, enabled: bool = True) -> None:
        self.taskset = shutil.which("taskset")
        ncpu = os.cpu_count() or 1
        self.enabled = enabled and self.taskset is not None and ncpu >= 2
        if not enabled:
            self.note = "pinning disabled: servers and clients share all cores"
        elif self.taskset is None:
            self.note = "taskset not found: running UNPINNED"
        elif ncpu < 2:
            self.note = f"only {ncpu} core: running UNPINNED"
        else:
            self.note = "server pinned to core 0, clients to core 1 (taskset)"

    def wrap(self, core: int, cmd: list[str]) -> list[str]:
        return [self.taskset, "-c", str(core), *cmd] if self.enabled and self.taskset else cmd


def scan_log(path: Path) -> list[str]:
    """Error lines a server logged (tracebacks, ERROR, exceptions)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if "Traceback" in ln or "ERROR" in ln or "Error:" in ln
            or "Exception" in ln]


# -- the harness -----------------------------------------------------------------------------

@dataclass
class Harness:
    python: str = str(BENCH_PY if BENCH_PY.exists() else Path(sys.executable))
    node_path: str = str(BENCH_NODE_MODULES)
    pin: Pinning = field(default_factory=Pinning)
    logs: Path = RESULTS / "logs"
    verbose: bool = True

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore",
                    NODE_PATH=self.node_path)

    def say(self, msg: str) -> None:
        if self.verbose:
            print(msg, flush=True)


class Server:
    """One soak server (soak/servers/), started on a free port and READY."""

    def __init__(self, h: Harness, name: str, tag: str, ping: tuple[float, float],
                 max_write_buffer: int | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        h.logs.mkdir(parents=True, exist_ok=True)
        self.log_path = h.logs / f"{tag}-{name}.server.log"
        cmd = [c.format(py=h.python) for c in SERVERS[name]["cmd"]]
        cmd += ["--port", str(self.port), "--ping-interval", str(ping[0]),
                "--ping-timeout", str(ping[1])]
        if max_write_buffer is not None:
            cmd += ["--max-write-buffer", str(max_write_buffer)]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(h.pin.wrap(0, cmd), cwd=SOAK, env=h.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        reader = LineReader(self.proc.stdout, copy_to=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                line = reader.get(deadline - time.monotonic())
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"{name}: no READY within 30 s (see {self.log_path})") from None
            if line is None:
                self.proc.wait(5)
                raise RuntimeError(f"{name} exited with {self.proc.returncode} before READY "
                                   f"(see {self.log_path})")
            if line.startswith("READY"):
                break
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid)

    def fds(self) -> int | None:
        return fd_count(self.pid)

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/stats", timeout=timeout) as r:
            return json.loads(r.read())

    def wait_fds(self, target: int, timeout: float, interval: float = 0.01) -> float | None:
        """Seconds until the fd count is <= target (None if not within ``timeout``)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            n = self.fds()
            if n is not None and n <= target:
                return time.monotonic() - t0
            time.sleep(interval)
        return None

    def errors(self) -> list[str]:
        return scan_log(self.log_path)

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


class Client:
    """A client process (Node script or soak/rawclients.py) that talks in lines."""

    def __init__(self, h: Harness, tag: str, argv: list[str], cfg: dict[str, Any],
                 server: Server | None = None) -> None:
        self.server = server
        self.samples: dict[str, dict[str, Any]] = {}
        self.log_path = h.logs / f"{tag}.client.log"
        cmd = [*argv, json.dumps(cfg)]
        self.proc = subprocess.Popen(h.pin.wrap(1, cmd), cwd=SOAK, env=h.env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.log_path, "w"), text=True,
                                     start_new_session=True)
        self.reader = LineReader(self.proc.stdout)
        self.on_hold: Callable[[str], None] | None = None

    @classmethod
    def node(cls, h: Harness, tag: str, script: str, cfg: dict[str, Any],
             server: Server | None = None) -> Client:
        return cls(h, tag, ["node", f"clients/{script}"], cfg, server)

    @classmethod
    def raw(cls, h: Harness, tag: str, cfg: dict[str, Any], server: Server | None = None) -> Client:
        return cls(h, tag, [sys.executable, "rawclients.py"], cfg, server)

    def sample(self, name: str) -> None:
        if self.server is not None:
            self.samples[name] = {"t": time.monotonic(), "rss_kb": self.server.rss_kb(),
                                  "fds": self.server.fds()}

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def expect(self, prefix: str, timeout: float) -> str:
        """Read lines (answering holds, recording marks) until one starts with ``prefix``;
        returns the rest of it. Raises RuntimeError on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.reader.get(deadline - time.monotonic())
            except queue.Empty:
                raise RuntimeError(f"no {prefix!r} from the client within {timeout:.0f} s "
                                   f"(see {self.log_path})") from None
            if line is None:
                raise RuntimeError(f"client exited before {prefix!r} (see {self.log_path}): "
                                   + self.tail())
            if line.startswith("@hold ") or line.startswith("@mark "):
                name = line.split(" ", 1)[1]
                self.sample(name)
                if line.startswith("@hold "):
                    if self.on_hold is not None:
                        self.on_hold(name)
                    self.send("go")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def result(self, timeout: float) -> dict[str, Any]:
        r = json.loads(self.expect("RESULT ", timeout))
        if "error" in r:
            raise RuntimeError(f"client failed: {r['error'].splitlines()[0][:300]}")
        return r

    def event(self, name: str, timeout: float) -> dict[str, Any]:
        """The next ``EVENT {"event": name, ...}`` line of soak/rawclients.py."""
        deadline = time.monotonic() + timeout
        while True:
            data = json.loads(self.expect("EVENT ", max(0.0, deadline - time.monotonic())))
            if data.get("event") == name:
                return data

    def tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop(self.proc, grace=3)


class Peak:
    """Samples the server's RSS in a thread, keeping the highest value."""

    def __init__(self, server: Server, interval: float = 0.05) -> None:
        self.server = server
        self.max_kb = server.rss_kb() or 0
        self.running = True
        self.thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self.thread.start()

    def _run(self, interval: float) -> None:
        while self.running:
            kb = self.server.rss_kb()
            if kb is not None and kb > self.max_kb:
                self.max_kb = kb
            time.sleep(interval)

    def stop(self) -> int:
        self.running = False
        self.thread.join(2)
        return self.max_kb


def _role_reasons(stats: dict[str, Any], role: str) -> dict[str, int]:
    return dict(stats.get("reasons", {}).get(role, {}))


def _wait_stats(server: Server, pred: Callable[[dict[str, Any]], bool], timeout: float,
                interval: float = 0.1) -> dict[str, Any]:
    """Poll ``/stats`` until ``pred`` holds (returns the last stats either way)."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    while True:
        try:
            stats = server.stats(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            if pred(stats):
                return stats
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return stats
        time.sleep(interval)


# -- scenarios -----------------------------------------------------------------------------
# Each takes (harness, server name, config) and returns a flat dict of figures; a config's
# "ping" = (interval, timeout) overrides the scenario's heartbeat.

def churn(h: Harness, name: str, cfg: dict[str, Any], transport: str) -> dict[str, Any]:
    """Connect/disconnect cycles; RSS after the warm-up and at the end, fds 5 s later."""
    tag = f"churn_{'ws' if transport == 'websocket' else transport}"
    server = Server(h, name, tag, tuple(cfg.get("ping", SHORT_PING)))
    client = None
    try:
        fds0 = server.fds()
        rss0 = server.rss_kb()
        ccfg = {"url": server.url, "transport": transport, "cycles": cfg["cycles"],
                "warm": cfg.get("warm", 0), "concurrency": cfg.get("concurrency", 20),
                "localAddresses": [f"127.0.0.{i}" for i in range(1, 5)],
                "limit": cfg.get("limit", 900)}
        client = Client.node(h, f"{tag}-{name}", "churn.js", ccfg, server)
        r = client.result(timeout=ccfg["limit"] + 30)
        client.proc.wait(15)  # the client process is gone: every socket of it is closed
        t_end = time.monotonic()
        fds_over_time = []
        while time.monotonic() - t_end < 5.0:
            time.sleep(1.0)
            fds_over_time.append(server.fds())
        fds5 = server.fds()
        stats = server.stats()
        s = client.samples
        warm = ccfg["warm"]
        rss_warm = s.get("warm", {}).get("rss_kb") if warm else rss0
        rss_end = s.get("end", {}).get("rss_kb")
        per_1k = None
        if rss_warm is not None and rss_end is not None and cfg["cycles"] > warm:
            per_1k = (rss_end - rss_warm) / ((cfg["cycles"] - warm) / 1000)
        return {
            "cycles": cfg["cycles"], "ok": r["ok"], "errors": r["errors"],
            "cycles_per_s": r["cycles_per_s"], "rss_kb_start": rss0, "rss_kb_warm": rss_warm,
            "rss_kb_end": rss_end, "rss_growth_kb_per_1k": per_1k,
            "fds_baseline": fds0, "fds_at_end": s.get("end", {}).get("fds"),
            "fds_after": fds_over_time, "fds_left_5s": None if fds5 is None or fds0 is None else fds5 - fds0,
            "server_reasons": _role_reasons(stats, "client"),
            "server_errors": server.errors()[:5], "server_alive": server.alive(),
        }
    finally:
        if client is not None:
            client.stop()
        server.stop()


def churn_ws(h: Harness, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return churn(h, name, cfg, "websocket")


def churn_polling(h: Harness, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return churn(h, name, cfg, "polling")


def _slow_run(h: Harness, name: str, cfg: dict[str, Any], mode: str) -> dict[str, Any]:
    """One slow-consumer run: ``stalled`` raw clients in ``mode`` (stall or read) and
    ``healthy`` socket.io-client sockets; the server broadcasts n x size to the room."""
    tag = f"slow_{mode}"
    limit = cfg.get("max_write_buffer") if name == "ioengine" else None
    server = Server(h, name, tag, tuple(cfg.get("ping", LONG_PING)), max_write_buffer=limit)
    raw = healthy = None
    peak = None
    try:
        fds0 = server.fds()
        raw = Client.raw(h, f"{tag}-{name}-raw", {
            "url": server.url, "clients": cfg["stalled"], "mode": mode, "rcvbuf": 4096,
            "concurrency": 50, "localAddresses": [f"127.0.0.{i}" for i in range(1, 5)],
            "limit": cfg.get("limit", 600)}, server)
        ev = raw.event("connected", timeout=120)
        hcfg = {"url": server.url, "clients": cfg["healthy"], "n": cfg["n"], "size": cfg["size"],
                "deadline": cfg.get("deadline", 180), "limit": cfg.get("deadline", 180) + 60}
        healthy = Client.node(h, f"{tag}-{name}-healthy", "healthy.js", hcfg, server)
        base: dict[str, Any] = {}

        def on_hold(point: str) -> None:
            nonlocal peak
            if point == "connected":
                base["stats"] = server.stats()
                base["rss_kb"] = server.rss_kb()
                base["fds"] = server.fds()
                peak = Peak(server)

        healthy.on_hold = on_hold
        r = healthy.result(timeout=hcfg["limit"] + 30)
        # the broadcast may still be going to the stalled clients: wait for its end
        stats = _wait_stats(server, lambda st: st["broadcast"].get("done", 0) >= 1,
                            timeout=cfg.get("deadline", 180))
        time.sleep(0.5)
        stats = server.stats()
        peak_kb = peak.stop() if peak else None
        rss_end = server.rss_kb()
        fds_end = server.fds()
        out: dict[str, Any] = {
            "stalled_connected": ev["connected"], "raw_errors": ev["errors"],
            "healthy_complete": r["complete"], "healthy_in_order": r["in_order"],
            "healthy": r["clients"], "healthy_bad_payloads": r["bad_payloads"],
            "healthy_disconnects": r["disconnects"],
            "healthy_completion_ms": r["completion_ms"]["max"],
            "healthy_completion_p50_ms": r["completion_ms"]["p50"],
            "first_ms": r["first_ms"], "broadcast_ms": stats["broadcast"].get("elapsed_ms"),
            "rss_kb_before": base.get("rss_kb"), "rss_kb_peak": peak_kb, "rss_kb_end": rss_end,
            "rss_growth_mb_peak": None if peak_kb is None or base.get("rss_kb") is None
            else (peak_kb - base["rss_kb"]) / 1024,
            "rss_growth_mb_end": None if rss_end is None or base.get("rss_kb") is None
            else (rss_end - base["rss_kb"]) / 1024,
            "fds_baseline": fds0, "fds_held": base.get("fds"), "fds_end": fds_end,
            "max_write_buffer": limit,
        }
        role = "stalled" if mode == "stall" else "reader"
        reasons = _role_reasons(stats, role)
        out["raw_dropped"] = sum(reasons.values())
        out["raw_reasons"] = reasons
        out["healthy_server_reasons"] = _role_reasons(stats, "healthy")
        if mode == "stall":
            # the stalled clients read now: those the server closed see a close frame or EOF
            raw.send(f"drain {cfg.get('drain_s', 10)}")
            d = raw.event("drained", timeout=cfg.get("drain_s", 10) + 60)
            out["raw_closed_by_server"] = d["closed_by_server"] + d["reset"]
            out["raw_reset"] = d["reset"]
            out["raw_still_open"] = d["still_open"]
        out["server_errors"] = server.errors()[:5]
        out["server_alive"] = server.alive()
        return out
    finally:
        if peak is not None:
            peak.stop()
        for c in (healthy, raw):
            if c is not None:
                c.stop()
        server.stop()


def slow(h: Harness, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Slow consumers: a control run (the raw clients read) then the stalled run."""
    control = _slow_run(h, name, cfg, "read")
    stalled = _slow_run(h, name, cfg, "stall")
    out = {f"stall_{k}": v for k, v in stalled.items()}
    out.update({f"control_{k}": v for k, v in control.items()})
    a, b = stalled.get("healthy_completion_ms"), control.get("healthy_completion_ms")
    out["completion_ratio"] = a / b if a and b else None
    out["stalled"] = cfg["stalled"]
    return out


def flood(h: Harness, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """One client floods ``n`` events while ``echo_clients`` others echo with acks; their
    latency before and during the flood. ``rounds`` > 1 repeats before/during on the same
    server (the figures are then the median of the rounds' ratios)."""
    server = Server(h, name, "flood", tuple(cfg.get("ping", SHORT_PING)))
    echo = flooder = None
    rounds = int(cfg.get("rounds", 1))
    try:
        ecfg = {"url": server.url, "clients": cfg["echo_clients"], "pace": cfg.get("pace_ms", 20),
                "limit": cfg.get("limit", 600)}
        echo = Client.node(h, f"flood-{name}-echo", "echo.js", ecfg, server)
        echo.expect("READY", timeout=60)
        time.sleep(cfg.get("settle_s", 1.0))
        if cfg.get("calibrate"):
            # two quiet windows back to back: how much the latency moves without a flood
            for i in (1, 2):
                echo.send(f"phase quiet{i}")
                time.sleep(cfg["before_s"])
        handled = 0
        flood_ms = []
        rss_before = rss_during_max = None
        ack: Any = None
        for rnd in range(1, rounds + 1):
            fcfg = {"url": server.url, "n": cfg["n"], "chunk": cfg.get("chunk", 1000),
                    "limit": cfg.get("limit", 600), "ackTimeout": cfg.get("flood_limit", 180)}
            flooder = Client.node(h, f"flood-{name}-flooder{rnd}", "flooder.js", fcfg, server)
            flooder.expect("READY", timeout=60)
            echo.send(f"phase before{rnd}")
            time.sleep(cfg["before_s"])
            rss_before = rss_before or server.rss_kb()
            echo.send(f"phase during{rnd}")
            peak = Peak(server)
            t0 = time.monotonic()
            flooder.send("go")
            target = handled + cfg["n"]
            # until the server has handled the whole flood, or the flooder is gone
            stats = _wait_stats(server, lambda st, target=target: st["flood"]["count"] >= target
                                or not st.get("connected", {}).get("flooder"),
                                timeout=cfg.get("flood_limit", 180), interval=0.05)
            flood_ms.append((time.monotonic() - t0) * 1000)
            echo.send("phase -")
            rss_during_max = max(rss_during_max or 0, peak.stop())
            handled = stats.get("flood", {}).get("count", handled)
            try:
                ack = flooder.result(timeout=30).get("end_ack")
            except RuntimeError as err:
                ack = {"error": str(err)}
            flooder.send("stop")
            flooder.proc.wait(10)
            flooder = None
            if stats.get("flood", {}).get("count", 0) < target:
                break  # the server did not get through the flood in time
            time.sleep(cfg.get("settle_s", 1.0))
        echo.send("stop")
        r = echo.result(timeout=30)
        stats = server.stats()
        ph = r["phases"]
        ratios = []
        for rnd in range(1, rounds + 1):
            b, d = ph.get(f"before{rnd}", {}), ph.get(f"during{rnd}", {})
            if b.get("p99") and d.get("p99"):
                ratios.append(d["p99"] / b["p99"])
        b1, d1 = ph.get("before1", {}), ph.get("during1", {})
        out: dict[str, Any] = {
            "n": cfg["n"], "rounds": rounds,
            "before_p50_ms": b1.get("p50"), "before_p99_ms": b1.get("p99"),
            "during_p50_ms": d1.get("p50"), "during_p99_ms": d1.get("p99"),
            "during_max_ms": d1.get("max"), "before_n": b1.get("n"), "during_n": d1.get("n"),
            "p99_ratio": statistics.median(ratios) if ratios else None,
            "p99_ratios": ratios, "phases": ph,
            "flood_handled": stats["flood"]["count"], "flood_out_of_order": stats["flood"]["out_of_order"],
            "flood_expected": cfg["n"] * rounds, "flood_ms": flood_ms, "flood_end_ack": ack,
            "flood_events_per_s": cfg["n"] / (flood_ms[0] / 1000) if flood_ms else None,
            "echo_timeouts": r["timeouts"], "echo_disconnects": r["disconnects"],
            "server_reasons": stats.get("reasons", {}),
            "rss_kb_before": rss_before, "rss_kb_during_max": rss_during_max,
            "server_errors": server.errors()[:5], "server_alive": server.alive(),
        }
        if cfg.get("calibrate"):
            q1, q2 = ph.get("quiet1", {}), ph.get("quiet2", {})
            out["quiet_p99_ms"] = [q1.get("p99"), q2.get("p99")]
        return out
    finally:
        for c in (flooder, echo):
            if c is not None:
                c.stop()
        server.stop()


def abrupt(h: Harness, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """``clients`` connections vanish at once with a TCP reset: time until the server's fd
    count is back to its baseline; then 5 new clients get a broadcast."""
    server = Server(h, name, "abrupt", tuple(cfg.get("ping", SHORT_PING)))
    raw = live = None
    try:
        fds0 = server.fds()
        raw = Client.raw(h, f"abrupt-{name}-raw", {
            "url": server.url, "clients": cfg["clients"], "mode": "hold", "concurrency": 50,
            "localAddresses": [f"127.0.0.{i}" for i in range(1, 5)],
            "limit": cfg.get("limit", 300)}, server)
        ev = raw.event("connected", timeout=180)
        time.sleep(cfg.get("hold_s", 2.5))  # a ping round or two: the clients are alive
        held = server.stats()
        fds_held = server.fds()
        raw.send("reset")
        rs = raw.event("reset", timeout=30)
        t_wait = time.monotonic()
        back = server.wait_fds(fds0 or 0, timeout=cfg.get("fd_limit", 30))
        # counted from the reset itself (both processes read the same CLOCK_MONOTONIC)
        recovery = None if back is None else t_wait + back - rs["t0"]
        stats = _wait_stats(server, lambda st: not st.get("connected", {}).get("abrupt"),
                            timeout=cfg.get("fd_limit", 30))
        fds_after = server.fds()
        raw.send("quit")
        lcfg = {"url": server.url, "clients": 5, "n": 3, "size": 100, "limit": 60}
        live = Client.node(h, f"abrupt-{name}-live", "live.js", lcfg, server)
        lr = live.result(timeout=60)
        time.sleep(0.3)
        return {
            "clients": cfg["clients"], "connected": ev["connected"], "raw_errors": ev["errors"],
            "server_saw_connected": held.get("connected", {}).get("abrupt", 0),
            "fds_baseline": fds0, "fds_held": fds_held, "fds_after": fds_after,
            "fd_recovery_s": recovery,
            "reset_took_s": rs["t1"] - rs["t0"],
            "server_reasons": _role_reasons(stats, "abrupt"),
            "still_connected": stats.get("connected", {}).get("abrupt", 0),
            "live_complete": lr["complete"], "live_clients": lr["clients"],
            "live_disconnects": lr["disconnects"],
            "server_errors": server.errors()[:5], "server_alive": server.alive(),
        }
    finally:
        for c in (live, raw):
            if c is not None:
                c.stop()
        server.stop()


SCENARIOS: dict[str, Callable[[Harness, str, dict[str, Any]], dict[str, Any]]] = {
    "churn_ws": churn_ws, "churn_polling": churn_polling, "slow": slow, "flood": flood,
    "abrupt": abrupt,
}


# -- goals and the table ---------------------------------------------------------------------

def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def goals(results: dict[str, dict[str, Any]], cfgs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals for flask_ioengine, checked against this run."""
    out: list[dict[str, Any]] = []

    def add(scen: str, goal: str, ok: bool | None, value: str) -> None:
        out.append({"scenario": scen, "goal": goal, "value": value,
                    "status": "-" if ok is None else "PASS" if ok else "FAIL"})

    def get(scen: str, server: str = "ioengine") -> dict[str, Any] | None:
        r = results.get(scen, {}).get(server)
        return r if r and "error" not in r else None

    r = get("churn_ws")
    if r:
        node = get("churn_ws", "node")
        ours = _num(r.get("rss_growth_kb_per_1k"))
        theirs = _num(node.get("rss_growth_kb_per_1k")) if node else None
        ref = theirs if theirs is not None else 249.0  # the baseline's upper end
        add("churn_ws", f"RSS growth per 1,000 cycles <= Node's ({'this run' if theirs is not None else 'baseline 249 KB'})",
            None if ours is None else ours <= max(ref, 0.0) + 16, f"{fmt(ours)} KB vs {fmt(ref)} KB")
        add("churn_ws", "no fd left 5 s after", r.get("fds_left_5s") == 0 if r.get("fds_left_5s") is not None else None,
            f"{r.get('fds_left_5s')}")
    r = get("churn_polling")
    if r:
        add("churn_polling", "no fd left 5 s after", r.get("fds_left_5s") == 0 if r.get("fds_left_5s") is not None else None,
            f"{r.get('fds_left_5s')}")
    r = get("slow")
    if r:
        stalled = r["stalled"]
        limit = r.get("stall_max_write_buffer") or 1_000_000
        reasons = r.get("stall_raw_reasons", {})
        add("slow", "every stalled client dropped (\"buffer full\")",
            reasons.get("buffer full", 0) == stalled, f"{reasons.get('buffer full', 0)}/{stalled}")
        bound_mb = stalled * limit / 2**20 + 32
        growth = _num(r.get("stall_rss_growth_mb_peak"))
        add("slow", f"RSS growth <= stalled x max_write_buffer + 32 MB ({bound_mb:.0f} MB)",
            None if growth is None else growth <= bound_mb, f"{fmt(growth)} MB")
        add("slow", "healthy clients get everything, in order",
            r.get("stall_healthy_complete") == r.get("stall_healthy") == r.get("stall_healthy_in_order"),
            f"{r.get('stall_healthy_complete')}/{r.get('stall_healthy')}")
    r = get("flood")
    if r:
        ratio = _num(r.get("p99_ratio"))
        add("flood", "others' echo p99 during <= 3x before", None if ratio is None else ratio <= 3.0,
            f"{fmt(ratio)}x")
        add("flood", "every flood event handled, in order",
            r.get("flood_handled") == r.get("flood_expected") and r.get("flood_out_of_order") == 0,
            f"{r.get('flood_handled')}/{r.get('flood_expected')}, {r.get('flood_out_of_order')} out of order")
    r = get("abrupt")
    if r:
        rec = _num(r.get("fd_recovery_s"))
        add("abrupt", "vanished clients' fds freed within 1 s of the reset", None if rec is None else rec <= 1.0,
            f"{fmt(rec)} s")
        add("abrupt", "a broadcast afterwards reaches the 5 live clients, no server error",
            r.get("live_complete") == r.get("live_clients") and not r.get("server_errors"),
            f"{r.get('live_complete')}/{r.get('live_clients')}, {len(r.get('server_errors', []))} error lines")
    return out


def fmt(v: Any, digits: int | None = None) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if digits is not None:
            return f"{v:,.{digits}f}"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _reasons(d: dict[str, int] | None) -> str:
    if not d:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))


def table_rows(cfgs: dict[str, dict[str, Any]]) -> list[tuple[str, str, Callable[[dict[str, Any]], str]]]:
    """(scenario, figure, how to show it from one server's result)."""
    c = cfgs
    rows: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = []
    if "churn_ws" in c:
        rows += [
            ("churn_ws", f"{c['churn_ws']['cycles']:,} WS cycles: cycles/s", lambda r: fmt(r["cycles_per_s"])),
            ("churn_ws", f"RSS growth per 1,000 cycles (after {c['churn_ws']['warm']:,})",
             lambda r: f"{fmt(r['rss_growth_kb_per_1k'])} KB"),
            ("churn_ws", "fds left 5 s after", lambda r: fmt(r["fds_left_5s"])),
            ("churn_ws", "failed cycles", lambda r: fmt(r["cycles"] - r["ok"])),
        ]
    if "churn_polling" in c:
        rows += [
            ("churn_polling", f"{c['churn_polling']['cycles']:,} polling cycles: cycles/s", lambda r: fmt(r["cycles_per_s"])),
            ("churn_polling", "fds left 5 s after", lambda r: fmt(r["fds_left_5s"])),
            ("churn_polling", "failed cycles", lambda r: fmt(r["cycles"] - r["ok"])),
        ]
    if "slow" in c:
        s = c["slow"]
        rows += [
            ("slow", f"{s['stalled']} stalled + {s['healthy']} healthy, {s['n']:,} x {s['size']} B",
             lambda r: ""),
            ("slow", "  server RSS growth, peak / end",
             lambda r: f"+{fmt(r['stall_rss_growth_mb_peak'])} / +{fmt(r['stall_rss_growth_mb_end'])} MB"),
            ("slow", "stalled clients dropped by the server",
             lambda r: f"{r['stall_raw_dropped']} of {r['stalled']}"),
            ("slow", "  their disconnect reasons", lambda r: _reasons(r["stall_raw_reasons"])),
            ("slow", "  closed, as the clients see it when they read again",
             lambda r: fmt(r.get("stall_raw_closed_by_server"))),
            ("slow", "healthy clients with all, in order",
             lambda r: f"{r['stall_healthy_in_order'] if r['stall_healthy_complete'] == r['stall_healthy'] else r['stall_healthy_complete']}/{r['stall_healthy']}"),
            ("slow", "healthy completion: stalled vs reading run",
             lambda r: f"{fmt(r['stall_healthy_completion_ms'])} vs {fmt(r['control_healthy_completion_ms'])} ms"),
            ("slow", "  reading run: RSS growth peak", lambda r: f"+{fmt(r['control_rss_growth_mb_peak'])} MB"),
        ]
    if "flood" in c:
        f = c["flood"]
        rows += [
            ("flood", f"1 client floods {f['n']:,} events, {f['echo_clients']} echo with acks", lambda r: ""),
            ("flood", "echo p50 before -> during",
             lambda r: f"{fmt(r['before_p50_ms'])} -> {fmt(r['during_p50_ms'])} ms"),
            ("flood", "echo p99 before -> during", lambda r: f"{fmt(r['before_p99_ms'])} -> {fmt(r['during_p99_ms'])} ms"),
            ("flood", "  p99 ratio (max during)", lambda r: f"{fmt(r['p99_ratio'])}x ({fmt(r['during_max_ms'])} ms)"),
            ("flood", "flood events handled by the server; in order", _flood_handled),
            ("flood", "  flood duration (until handled, or the flooder gone)",
             lambda r: f"{fmt(r['flood_ms'][0] / 1000)} s"),
            ("flood", "echo acks that never came (30 s)", lambda r: fmt(r["echo_timeouts"])),
            ("flood", "disconnects during the run", lambda r: _reasons(_flat_reasons(r))),
        ]
    if "abrupt" in c:
        rows += [
            ("abrupt", f"{c['abrupt']['clients']:,} clients reset: fds back to baseline after",
             lambda r: f"{fmt(r['fd_recovery_s'])} s" if r["fd_recovery_s"] is not None else f"not within 30 s ({r['fds_after'] - r['fds_baseline']} left)"),
            ("abrupt", "  server's disconnect reasons", lambda r: _reasons(r["server_reasons"])),
            ("abrupt", "5 new clients get a broadcast", lambda r: f"{r['live_complete']}/{r['live_clients']}"),
        ]
    rows.append(("*", "server error lines in its log", lambda r: fmt(len(r.get("server_errors") or []))))
    return rows


def _flood_handled(r: dict[str, Any]) -> str:
    order = "yes" if r["flood_out_of_order"] == 0 else f"{r['flood_out_of_order']:,} out of order"
    return f"{r['flood_handled']:,} of {r['flood_expected']:,}; {order}"


def _flat_reasons(r: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for role, reasons in r.get("server_reasons", {}).items():
        if role in ("echo", "flooder"):
            for k, v in reasons.items():
                if k not in ("client namespace disconnect", "client disconnect"):
                    out[f"{role}: {k}"] = out.get(f"{role}: {k}", 0) + v
    return out


def print_table(results: dict[str, dict[str, Any]], cfgs: dict[str, dict[str, Any]],
                servers: list[str], goal_list: list[dict[str, Any]]) -> str:
    labels = [SERVERS[s]["label"] for s in servers]
    rows = table_rows(cfgs)
    cells: list[list[str]] = []
    for scen, figure, show in rows:
        line = [figure]
        for sv in servers:
            if scen == "*":
                errs = sum(len((results.get(sn, {}).get(sv) or {}).get("server_errors") or []) for sn in results)
                line.append(fmt(errs))
                continue
            r = results.get(scen, {}).get(sv)
            if r is None:
                line.append("")
            elif "error" in r:
                line.append("ERROR: " + str(r["error"])[:40])
            else:
                try:
                    line.append(show(r))
                except (KeyError, TypeError, IndexError, ZeroDivisionError):
                    line.append("?")
        cells.append(line)
    widths = [max(len(x) for x in col) for col in zip(["figure", *labels], *cells, strict=True)]
    widths = [min(w, 62 if i == 0 else 44) for i, w in enumerate(widths)]
    sep = "  "
    out = [sep.join(h.ljust(w) for h, w in zip(["figure", *labels], widths, strict=True))]
    out.append(sep.join("-" * w for w in widths))
    last = None
    for (scen, _, _), line in zip(rows, cells, strict=True):
        if scen != last and last is not None:
            out.append("")
        last = scen
        out.append(sep.join((v if len(v) <= w else v[:w - 3] + "...").ljust(w)
                            for v, w in zip(line, widths, strict=True)))
    if goal_list:
        out += ["", "flask_ioengine goals:"]
        for g in goal_list:
            out.append(f"  {g['status']:<4}  {g['scenario']:<14} {g['goal']}: {g['value']}")
    text = "\n".join(out)
    print(text, flush=True)
    return text


# -- main --------------------------------------------------------------------------------------

def versions(h: Harness) -> dict[str, Any]:
    v: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            "for d in ('flask_ioengine', 'python-socketio', 'python-engineio', 'eventlet', 'flask'):\n"
            "    try: out[d] = m.version(d)\n"
            "    except Exception: out[d] = None\n"
            "print(json.dumps(out))")
    try:
        done = subprocess.run([h.python, "-c", code], capture_output=True, text=True, timeout=60,
                              env=h.env())
        v.update(json.loads(done.stdout.strip().splitlines()[-1]))
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        pass
    for pkg in ("socket.io", "socket.io-client"):
        try:
            v[pkg] = json.loads((Path(h.node_path) / pkg / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            v[pkg] = None
    try:
        v["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                   timeout=10).stdout.strip()
    except OSError:
        v["node"] = None
    return v


def run_all(h: Harness, scen_names: list[str], servers: list[str],
            cfgs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for sn in scen_names:
        results[sn] = {}
        for sv in servers:
            t0 = time.monotonic()
            h.say(f"== {sn} x {SERVERS[sv]['label']} ...")
            try:
                results[sn][sv] = SCENARIOS[sn](h, sv, cfgs[sn])
            except Exception as err:  # one failed run must not lose the others
                results[sn][sv] = {"error": f"{type(err).__name__}: {err}"}
            took = time.monotonic() - t0
            results[sn][sv]["took_s"] = round(took, 1)
            status = results[sn][sv].get("error", "ok")
            h.say(f"   {status} ({took:.0f} s)")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short versions of every scenario")
    p.add_argument("--servers", default="ioengine,pysio,node",
                   help="comma-separated: " + ",".join(SERVERS))
    p.add_argument("--scenarios", default=",".join(SCENARIO_NAMES),
                   help="comma-separated: " + ",".join(SCENARIO_NAMES))
    p.add_argument("--python", default=None, help="interpreter of the Python servers "
                   "(default bench/.venv/bin/python)")
    p.add_argument("--node-path", default=None, help="NODE_PATH (default bench/node_modules)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = p.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    scen_names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}")
    for s in scen_names:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    nofile = raise_nofile()
    h = Harness(pin=Pinning(not args.no_pin))
    if args.python:
        h.python = args.python
    if args.node_path:
        h.node_path = args.node_path
    cfgs = {sn: dict((QUICK if args.quick else FULL)[sn]) for sn in scen_names}
    load0 = os.getloadavg()
    h.say(f"soak ({'quick' if args.quick else 'full'}): {h.pin.note}; load average {load0[0]:.2f}; "
          f"RLIMIT_NOFILE {nofile}")
    if "slow" in cfgs:
        h.say(f"slow consumers: flask_ioengine runs with max_write_buffer="
              f"{cfgs['slow']['max_write_buffer']:,} (default 1,000,000); pings 60 s + 60 s in "
              "that scenario, 1 s + 1 s elsewhere")
    t0 = time.monotonic()
    vers = versions(h)
    results = run_all(h, scen_names, servers, cfgs)
    goal_list = goals(results, cfgs) if "ioengine" in servers else []
    labels = ", ".join(f"{SERVERS[s]['label']}" for s in servers)
    print(f"\nsoak results ({'quick' if args.quick else 'full'}; {labels}; "
          f"flask_ioengine {vers.get('flask_ioengine')}, python-socketio {vers.get('python-socketio')}, "
          f"socket.io {vers.get('socket.io')}, node {vers.get('node')})\n")
    table = print_table(results, cfgs, servers, goal_list)
    took = time.monotonic() - t0
    print(f"\n{took / 60:.1f} min; load average {load0[0]:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end; details in {args.out}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": "quick" if args.quick else "full",
        "servers": servers, "scenarios": scen_names, "config": cfgs, "versions": vers,
        "pinning": h.pin.note, "loadavg_start": load0, "loadavg_end": os.getloadavg(),
        "took_s": round(took, 1), "baselines": BASELINES, "results": results,
        "goals": goal_list, "table": table,
    }, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
