"""Integration tests of the Engine.IO server with the official engine.io-client (Node).

Each test runs ``tests/js/eio_echo.js`` against ``tests/servers/engine_echo.py`` and
asserts what the client observed (transport names, echoes, close reasons) and what the
server printed (``CLOSE <sid> <reason>``). The heartbeat timeout is tested with raw
Python clients that handshake and then never answer the ping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
import websocket

from helpers import PYTHON, TESTS, Proc, free_port, run_node

MODES = {
    "polling": {"transports": ["polling"]},
    "websocket": {"transports": ["websocket"]},
    "upgrade": {"transports": ["polling", "websocket"]},
}
HEARTBEAT = {"ping_interval": 0.3, "ping_timeout": 0.6}


def start(options: dict) -> Proc:
    port = free_port()
    return Proc(
        [PYTHON, str(TESTS / "servers" / "engine_echo.py"), str(port), json.dumps(options)],
        port=port,
        name="engine-client",
    )


@pytest.fixture(scope="module")
def echo() -> Iterator[Proc]:
    proc = start({})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def heartbeat() -> Iterator[Proc]:
    proc = start(HEARTBEAT)
    yield proc
    proc.stop()


def client(server: Proc, mode: str, steps: list[str], **extra: object) -> dict:
    config = {"port": server.port, "steps": steps, **MODES[mode], **extra}
    result = run_node("eio_echo.js", json.dumps(config), timeout=40)
    assert not result.get("timedOut"), result
    assert result["errors"] == [], result
    return result


def expected_transports(mode: str) -> tuple[str, str, list[str]]:
    """(transport at open, transport afterwards, upgrade events) for a mode."""
    if mode == "upgrade":
        return "polling", "websocket", ["websocket"]
    return mode, mode, []


# -- messages -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_text_and_binary_echo(echo, mode):
    steps = ["waitUpgrade", "echo", "clientClose"] if mode == "upgrade" else ["echo", "clientClose"]
    result = client(echo, mode, steps)
    at_open, after, upgrades = expected_transports(mode)
    assert result["transportAtOpen"] == at_open
    assert result["upgrades"] == upgrades
    if mode == "upgrade":
        assert result["steps"]["waitUpgrade"]["transport"] == "websocket"
    echo_step = result["steps"]["echo"]
    assert echo_step["transport"] == after
    assert echo_step["received"] == [
        {"type": "string", "text": "hello", "transport": after},
        {"type": "Buffer", "hex": "0001027f80fdfeff", "transport": after},
        {"type": "string", "text": "héllo €", "transport": after},
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_500_messages_in_order(echo, mode):
    steps = (
        ["waitUpgrade", "order", "clientClose"] if mode == "upgrade" else ["order", "clientClose"]
    )
    result = client(echo, mode, steps, count=500)
    order = result["steps"]["order"]
    assert order["sent"] == 500
    assert order["received"] == 500
    assert order["inOrder"], order
    assert order["byTransport"] == {expected_transports(mode)[1]: 500}


def test_messages_straddling_the_upgrade_are_neither_lost_nor_reordered(echo):
    # Batches of messages go out from the "open" event on and keep going until the
    # upgrade is done and 500+ (50+ after the upgrade) were sent.
    result = client(echo, "upgrade", ["straddle", "clientClose"], count=500)
    assert result["transportAtOpen"] == "polling"
    assert result["upgrades"] == ["websocket"]
    straddle = result["steps"]["straddle"]
    assert straddle["sentBeforeUpgrade"] > 0
    assert straddle["sentAfterUpgrade"] >= 50
    assert straddle["sent"] >= 500
    assert straddle["received"] == straddle["sent"]
    assert straddle["inOrder"], straddle
    assert straddle["byTransport"].get("websocket", 0) > 0
    assert sum(straddle["byTransport"].values()) == straddle["sent"]


# -- closing --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_server_initiated_close(echo, mode):
    steps = ["waitUpgrade", "serverClose"] if mode == "upgrade" else ["serverClose"]
    result = client(echo, mode, steps)
    after = expected_transports(mode)[1]
    assert result["steps"]["serverClose"] == {"transport": after, "readyState": "closed"}
    # engine.io-client reports a server close as "transport close"; the description
    # says how it learnt it (the CLOSE packet on polling, the socket closing on WS).
    description = (
        "transport closed by the server" if after == "polling" else "websocket connection closed"
    )
    assert result["closes"] == [{"reason": "transport close", "description": description}]
    out = echo.wait_output(f"CLOSE {result['sid']} ")
    assert f"CLOSE {result['sid']} forced close\n" in out
    assert out.count(f"CLOSE {result['sid']} ") == 1


@pytest.mark.parametrize("mode", list(MODES))
def test_client_close(echo, mode):
    steps = ["waitUpgrade", "clientClose"] if mode == "upgrade" else ["clientClose"]
    result = client(echo, mode, steps)
    assert result["steps"]["clientClose"] == {
        "transport": expected_transports(mode)[1],
        "readyState": "closed",
    }
    assert result["closes"] == [{"reason": "forced close", "description": None}]
    out = echo.wait_output(f"CLOSE {result['sid']} ")
    assert f"CLOSE {result['sid']} transport close\n" in out
    assert out.count(f"CLOSE {result['sid']} ") == 1
    # The session is gone: its sid is unknown now.
    r = requests.get(
        f"http://127.0.0.1:{echo.port}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": result["sid"]},
        timeout=10,
    )
    assert (r.status_code, r.json()) == (400, {"code": 1, "message": "Session ID unknown"})


# -- heartbeat ------------------------------------------------------------------------


def assert_sid_unknown(port: int, sid: str) -> None:
    r = requests.get(
        f"http://127.0.0.1:{port}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": sid},
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json() == {"code": 1, "message": "Session ID unknown"}


def test_silent_polling_client_times_out(heartbeat):
    began = time.monotonic()
    r = requests.get(
        f"http://127.0.0.1:{heartbeat.port}/socket.io/",
        params={"EIO": "4", "transport": "polling"},
        timeout=10,
    )
    assert r.status_code == 200
    handshake = json.loads(r.text[1:])
    assert (handshake["pingInterval"], handshake["pingTimeout"]) == (300, 600)
    sid = handshake["sid"]
    # Never poll, so never see the ping, so never answer it.
    slack = 5.0
    heartbeat.wait_output(f"CLOSE {sid} ping timeout\n", timeout=0.9 + slack)
    assert time.monotonic() - began >= 0.9 - 0.05  # not before interval + timeout
    assert_sid_unknown(heartbeat.port, sid)


def test_silent_websocket_client_times_out(heartbeat):
    began = time.monotonic()
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{heartbeat.port}/socket.io/?EIO=4&transport=websocket", timeout=10
    )
    try:
        opening = ws.recv()
        assert opening.startswith("0{")
        sid = json.loads(opening[1:])["sid"]
        assert ws.recv() == "2"  # the ping, which this client ignores
        heartbeat.wait_output(f"CLOSE {sid} ping timeout\n", timeout=0.9 + 5.0)
        assert time.monotonic() - began >= 0.9 - 0.05
        # The server dropped the connection: reading ends (no more pings).
        with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
            while True:
                frame = ws.recv()
                if frame == "":  # close frame
                    raise websocket.WebSocketConnectionClosedException("closed")
                assert frame in ("2", "1")
    finally:
        ws.close()
    assert_sid_unknown(heartbeat.port, sid)


@pytest.mark.parametrize("mode", list(MODES))
def test_well_behaved_client_survives_heartbeats(heartbeat, mode):
    # 6 pings at a 0.3 s interval: the session outlived interval + timeout several times.
    steps = (
        ["waitUpgrade", "pings", "clientClose"] if mode == "upgrade" else ["pings", "clientClose"]
    )
    result = client(heartbeat, mode, steps, pings=6)
    pings = result["steps"]["pings"]
    assert pings["pings"] >= 6
    assert pings["sameSid"] is True
    assert pings["readyState"] == "open"
    assert pings["closesSoFar"] == 0
    assert pings["echo"] == "still alive"
    assert pings["transport"] == expected_transports(mode)[1]
    out = heartbeat.wait_output(f"CLOSE {result['sid']} ")
    assert f"CLOSE {result['sid']} transport close\n" in out
    assert f"CLOSE {result['sid']} ping timeout" not in out
