"""Short soak scenarios against flask_ioengine (the full ones, side by side with
python-socketio and Node socket.io, are ``make soak``; see soak/run.py).

Run with the project's own .venv and node_modules (socket.io-client), through the
harness of soak/run.py: the server pinned to core 0 and the clients to core 1 when
taskset exists, measured from /proc/<pid>. The machine has 2 cores shared with other
work, so the assertions are on counts, ordering, fds and disconnect reasons; the one
timing goal (a flood must not raise the others' echo p99 more than 3x) is a ratio taken
over several rounds, and skipped when a calibration shows the machine too noisy to
measure it.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"

if shutil.which("node") is None or not (NODE_MODULES / "socket.io-client").is_dir():
    pytest.skip("needs node and node_modules/socket.io-client (make setup)", allow_module_level=True)


def _load_soak():
    spec = importlib.util.spec_from_file_location("soak_run", ROOT / "soak" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_run"] = module
    spec.loader.exec_module(module)
    return module


soak = _load_soak()

SERVER = "ioengine"
MAX_WRITE_BUFFER = 262_144


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    soak.raise_nofile()
    return soak.Harness(python=sys.executable, node_path=str(NODE_MODULES),
                        pin=soak.Pinning(True), logs=tmp_path_factory.mktemp("soak-logs"),
                        verbose=False)


def _clean_server(r: dict) -> None:
    assert r["server_alive"], "the server died"
    assert not r["server_errors"], f"the server logged errors: {r['server_errors']}"


def test_websocket_churn_leaves_no_fd_behind(harness):
    r = soak.churn_ws(harness, SERVER, {"cycles": 1500, "warm": 500, "concurrency": 20})
    assert r["ok"] == 1500 and not r["errors"], r
    assert r["fds_left_5s"] == 0, f"fds: baseline {r['fds_baseline']}, then {r['fds_after']}"
    assert r["server_reasons"] == {"client namespace disconnect": 1500}, r["server_reasons"]
    # python-socketio grows ~10 MB per 1,000 cycles here, Node 0.1-0.25 MB, flask_ioengine
    # ~0.1 MB over 20,000 (make soak) but a few MB over its first thousand (caches and
    # allocator arenas warming up): a per-connection leak would still stand out.
    growth_mb = (r["rss_kb_end"] - r["rss_kb_warm"]) / 1024
    assert growth_mb < 5, f"RSS grew {growth_mb:.1f} MB over 1,000 connect/disconnect cycles"
    _clean_server(r)


def test_polling_churn_leaves_no_fd_behind(harness):
    r = soak.churn_polling(harness, SERVER, {"cycles": 300, "concurrency": 10})
    assert r["ok"] == 300 and not r["errors"], r
    assert r["fds_left_5s"] == 0, f"fds: baseline {r['fds_baseline']}, then {r['fds_after']}"
    _clean_server(r)


def _kernel_send_buffer_max() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 2**20


def test_stalled_clients_are_dropped_and_healthy_ones_get_everything(harness):
    stalled = 30
    # the kernel takes up to tcp_wmem's max for a client that does not read before the
    # server's own buffer grows: send more than that plus the limit (5,000 x 1 KB here)
    n = max(5000, (_kernel_send_buffer_max() + 2 * MAX_WRITE_BUFFER) // 1024 + 500)
    cfg = {"stalled": stalled, "healthy": 5, "n": n, "size": 1024,
           "max_write_buffer": MAX_WRITE_BUFFER, "deadline": 60, "drain_s": 5}
    r = soak._slow_run(harness, SERVER, cfg, "stall")
    assert r["stalled_connected"] == stalled, r
    # every stalled client was cut off by the server, for its buffer, and saw it closed
    assert r["raw_reasons"] == {"buffer full": stalled}, r["raw_reasons"]
    assert r["raw_closed_by_server"] == stalled, r
    # the healthy ones were not: all n messages, in order, intact
    assert r["healthy_complete"] == r["healthy_in_order"] == 5, r
    assert r["healthy_bad_payloads"] == 0 and not r["healthy_disconnects"], r
    assert "buffer full" not in r["healthy_server_reasons"], r["healthy_server_reasons"]
    # memory: bounded by the buffers (stalled x max_write_buffer), plus allocator slack
    bound_mb = stalled * MAX_WRITE_BUFFER / 2**20 + 32
    assert r["rss_growth_mb_peak"] <= bound_mb, (r["rss_growth_mb_peak"], bound_mb)
    # their connections are closed, not only forgotten
    assert r["fds_end"] <= r["fds_baseline"] + 5 + 1, r  # the 5 healthy (+ a stats request)
    _clean_server(r)


def test_flood_is_handled_in_order_without_hurting_the_others(harness):
    rounds, n = 3, 20000
    # 5 s + 5 s pings: with 1 s + 1 s a slowed server times the flooder out (see the
    # xfail test below); this test is about order and the others' latency
    r = soak.flood(harness, SERVER, {"echo_clients": 20, "n": n, "rounds": rounds,
                                     "before_s": 2.0, "pace_ms": 20, "settle_s": 0.5,
                                     "calibrate": True, "flood_limit": 60, "ping": (5.0, 5.0)})
    # counts first: they hold whatever the load on the machine
    assert r["flood_handled"] == n * rounds, r["flood_handled"]
    assert r["flood_out_of_order"] == 0
    assert r["echo_timeouts"] == 0 and not r["echo_disconnects"], r
    # nobody was cut off: every client left by closing its own socket at the end
    for role in ("flooder", "echo"):
        assert set(r["server_reasons"][role]) == {"client namespace disconnect"}, r["server_reasons"]
    _clean_server(r)
    # the ratio: each round's p99 during the flood against the p99 just before it
    q1, q2 = r["quiet_p99_ms"]
    befores = [r["phases"][f"before{i}"]["p99"] for i in range(1, rounds + 1)]
    durings = [r["phases"][f"during{i}"]["p99"] for i in range(1, rounds + 1)]
    noise = max(q1, q2) / max(min(q1, q2), 0.1)
    if noise > 2.5 or max(befores) > 50:
        pytest.skip(f"machine too loaded to measure latency ratios: two quiet windows gave "
                    f"p99 {q1:.1f} and {q2:.1f} ms, p99 before the floods {befores} ms")
    slack_ms = 5.0
    ok = [d <= 3 * b + slack_ms for b, d in zip(befores, durings, strict=True)]
    ratio = statistics.median(d / b for b, d in zip(befores, durings, strict=True))
    assert sum(ok) * 2 > rounds, (f"echo p99 before {befores} ms, during the flood {durings} ms "
                                  f"(median ratio {ratio:.1f}x; goal <= 3x + {slack_ms} ms)")


def test_flooder_is_not_timed_out_while_the_server_holds_its_input(harness):
    """A flood on a server slowed to half a core (a CPU hog shares core 0), 1 s + 1 s pings:
    the server reads the flooder more slowly than it writes; the client is alive and
    answers pings at once, but the server cannot read its PONG until the backlog is gone."""
    if not harness.pin.enabled:
        pytest.skip("needs taskset and 2 cores to slow the server's core only")
    hog = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"],
                           start_new_session=True)
    try:
        r = soak.flood(harness, SERVER, {"echo_clients": 20, "n": 100000, "before_s": 2.0,
                                         "pace_ms": 20, "settle_s": 0.5, "flood_limit": 60,
                                         "ping": (1.0, 1.0)})
    finally:
        soak.stop(hog, grace=2)
    _clean_server(r)
    assert r["server_reasons"]["flooder"] == {"client namespace disconnect": 1}, (
        f"{r['server_reasons']['flooder']} after {r['flood_handled']:,} of 100,000 events")
    assert r["flood_handled"] == 100000 and r["flood_out_of_order"] == 0


def test_vanished_clients_are_freed_and_the_rest_still_served(harness):
    clients = 300
    r = soak.abrupt(harness, SERVER, {"clients": clients, "hold_s": 2.5, "fd_limit": 15})
    assert r["connected"] == clients and r["server_saw_connected"] == clients, r
    # a TCP reset is noticed by the transport at once: freed well within a second of it
    assert r["fd_recovery_s"] is not None, f"fds still {r['fds_after']} (baseline {r['fds_baseline']})"
    assert r["fd_recovery_s"] < 2.0, r["fd_recovery_s"]
    assert r["still_connected"] == 0
    assert sum(r["server_reasons"].values()) == clients, r["server_reasons"]
    assert set(r["server_reasons"]) <= {"transport close", "transport error"}, r["server_reasons"]
    assert r["live_complete"] == r["live_clients"] == 5, r
    assert not r["live_disconnects"], r
    _clean_server(r)
