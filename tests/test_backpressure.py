"""Slow consumers: a client that stops reading is cut off once its outgoing buffer passes
``max_write_buffer`` ("buffer full"), while the others go on unharmed."""

from __future__ import annotations

import base64
import os
import socket
import time

import requests

from helpers import run_node


def _stalled_websocket(port: int) -> tuple[socket.socket, str]:
    """A raw WebSocket client with a tiny receive buffer that will never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\n\r\n").encode())
    data = b""
    sock.settimeout(10)
    while b'"sid":"' not in data:
        chunk = sock.recv(4096)
        assert chunk, "connection closed during the handshake"
        data += chunk
    sid = data.split(b'"sid":"')[1].split(b'"')[0].decode()
    payload = b"4blast:3000:1000"  # 3 MB towards a client that does not read
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock, sid


def _wait_output(proc, text: str, timeout: float = 20.0) -> str:
    return proc.wait_output(text, timeout=timeout)


def test_stalled_websocket_client_is_cut_off(engine_server):
    server = engine_server(max_write_buffer=200_000)
    sock, sid = _stalled_websocket(server.port)
    try:
        _wait_output(server, f"CLOSE {sid} buffer full")
        # Healthy clients are served while and after the stalled one is dropped.
        cfg = f'{{"port":{server.port},"transports":["websocket"],"steps":["echo"]}}'
        r = run_node("eio_echo.js", cfg)
        assert not r["errors"] and len(r["steps"]["echo"]["received"]) == 3, r
    finally:
        sock.close()


def test_stalled_polling_client_is_cut_off(engine_server):
    server = engine_server(max_write_buffer=200_000)
    base = f"http://127.0.0.1:{server.port}/socket.io/"
    r = requests.get(base, params={"EIO": "4", "transport": "polling"}, timeout=10)
    sid = r.text.split('"sid":"')[1].split('"')[0]
    r = requests.post(base, params={"EIO": "4", "transport": "polling", "sid": sid},
                      data="4blast:1000:1000", timeout=10)
    assert r.text == "ok"
    _wait_output(server, f"CLOSE {sid} buffer full")
    r = requests.get(base, params={"EIO": "4", "transport": "polling", "sid": sid}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == 1


def test_within_the_limit_nothing_is_dropped(engine_server):
    server = engine_server(max_write_buffer=200_000)
    base = f"http://127.0.0.1:{server.port}/socket.io/"
    r = requests.get(base, params={"EIO": "4", "transport": "polling"}, timeout=10)
    sid = r.text.split('"sid":"')[1].split('"')[0]
    requests.post(base, params={"EIO": "4", "transport": "polling", "sid": sid},
                  data="4blast:150:1000", timeout=10)
    received: list[str] = []
    deadline = time.monotonic() + 20
    while len(received) < 150 and time.monotonic() < deadline:
        r = requests.get(base, params={"EIO": "4", "transport": "polling", "sid": sid},
                         timeout=30)
        received += [p for p in r.text.split("\x1e") if p.startswith("4")]
    assert [p[1] for p in received] == [str(i % 10) for i in range(150)]
    assert "buffer full" not in server.output()


def test_a_sender_that_never_yields_does_not_cut_off_a_reading_client(engine_server):
    """2 MB emitted in one loop that never yields, to a client that reads everything: the
    limit (1 MB by default) is about what the client does not take, not the loop."""
    import websocket  # websocket-client

    server = engine_server()
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=20)
    try:
        assert ws.recv().startswith('0{"sid":')
        ws.send("4blast:2000:1000")
        got = [ws.recv() for _ in range(2000)]
    finally:
        ws.close()
    assert [m[1] for m in got] == [str(i % 10) for i in range(2000)]
    assert all(len(m) == 1001 for m in got)
    assert "buffer full" not in server.output()
