"""The demo of SPEC §3 (demo/app.py) held to its contract, as a real process.

The demo runs as ``python -m demo`` (and, in the run-mode tests, under ``flask run`` and
gunicorn with the project's eventlet worker) with ``SESSION_RELOAD_INTERVAL=1``, for
both session stores (``cachelib`` files and a real ``redis-server``). The official
Node ``socket.io-client`` drives it through ``tests/js/demo_client.js``: every scenario
runs websocket-only and polling-only, with the session cookie sent in
``extraHeaders.cookie`` ("header") and with ``withCredentials: true`` ("credentials":
the client also keeps, in its own jar, the cookies the server sets). Headers and CORS
are checked with raw HTTP (requests) and raw sockets.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from helpers import PYTHON, run_node

SESSION_TYPES = ["cachelib", "redis"]
CLIENTS = [(t, m) for t in ("websocket", "polling") for m in ("header", "credentials")]
CLIENT_IDS = [f"{t}-{m}" for t, m in CLIENTS]
ALLOWED = "http://localhost:4200"
EVIL = "http://evil.example"
TIMEOUT = 10

# Flask-Session stores a session under SESSION_KEY_PREFIX ("session:") + sid; cachelib's
# FileSystemCache names the file after the sha256 hex digest of that key.
DESTROY_CACHELIB = """
import hashlib, json, os, sys
path = os.path.join(sys.argv[1], hashlib.sha256(("session:" + sys.argv[2]).encode()).hexdigest())
existed = os.path.exists(path)
if existed:
    os.remove(path)
print(json.dumps({"deleted": existed, "path": path}))
"""
DESTROY_REDIS = """
import json, sys
import redis
deleted = redis.from_url(sys.argv[1]).delete("session:" + sys.argv[2])
print(json.dumps({"deleted": deleted == 1}))
"""


def destroy_command(demo: Any) -> list[str]:
    """argv that destroys session ``{sid}`` in the demo's store, behind its back."""
    if demo.session_type == "cachelib":
        return [PYTHON, "-c", DESTROY_CACHELIB, demo.session_dir, "{sid}"]
    return [PYTHON, "-c", DESTROY_REDIS, demo.redis_url, "{sid}"]


def client_report(demo: Any, transport: str, mode: str, only: list[str] | None = None) -> dict:
    cfg = {"port": demo.port, "transport": transport, "mode": mode,
           "interval": demo.reload_interval, "slack": 8, "destroy": destroy_command(demo)}
    if only:
        cfg["only"] = only
    return run_node("demo_client.js", json.dumps(cfg), timeout=120)


@pytest.fixture(scope="module")
def scenario(demo_server: Callable[..., Any]) -> Callable[[str, str, str, str], dict]:
    """``scenario(session_type, transport, mode, name)``: one scenario's report. All the
    scenarios of a (session type, transport, mode) run in one Node process; the four
    processes of a session type run side by side, the first time it is asked for."""
    reports: dict[tuple[str, str, str], Any] = {}

    def run(session_type: str, transport: str, mode: str) -> Any:
        try:
            return client_report(demo_server(session_type), transport, mode)
        except Exception as exc:  # reported by every test of that run
            return exc

    def get(session_type: str, transport: str, mode: str, name: str) -> dict:
        key = (session_type, transport, mode)
        if key not in reports:
            demo_server(session_type)  # started once, before the clients
            with ThreadPoolExecutor(max_workers=len(CLIENTS)) as pool:
                futures = {(session_type, t, m): pool.submit(run, session_type, t, m)
                           for t, m in CLIENTS}
                reports.update({k: f.result() for k, f in futures.items()})
        report = reports[key]
        log = demo_server(session_type).proc.output()[-3000:]
        if isinstance(report, Exception):
            raise AssertionError(f"{report}\n--- demo output ---\n{log}")
        result = report["results"][name]
        assert "error" not in result, f"{result['error']}\n--- demo output ---\n{log}"
        return result

    return get


@pytest.fixture(params=SESSION_TYPES)
def session_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def demo(demo_server: Callable[..., Any], session_type: str) -> Any:
    return demo_server(session_type)


# -- the counter flow with the Node client ------------------------------------------------


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_current_count_reaches_every_socket_of_the_session_only(scenario, session_type,
                                                               transport, mode):
    r = scenario(session_type, transport, mode, "rooms")
    assert r["transports"] == [transport] * 3
    assert r["posts"] == ["1", "1", "2"]  # A: 1, B: 1, A: 2
    assert r["a1"] == [[1], [2]]
    assert r["a2"] == [[1], [2]]
    assert r["b1"] == [[1]]  # B's own count only, never A's
    assert len(set(r["ids"])) == 3


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_my_event_acks_the_count_and_views_continue_from_it(scenario, session_type,
                                                            transport, mode):
    r = scenario(session_type, transport, mode, "ack")
    assert r["initial"] == 0
    # POST 1, ack 2 (socket 1), POST 3, ack 4 (socket 2), ack 5 (socket 1), POST 6
    assert r["posts"] == ["1", "3", "6"]
    assert r["acks"] == [2, 4, 5]
    assert r["s1counts"] == [[1], [3], [6]]
    assert r["page"] == 6


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_logout_disconnects_the_sessions_sockets_only(scenario, session_type, transport, mode):
    r = scenario(session_type, transport, mode, "logout")
    assert r["before"] == ["1", "2"]
    assert r["logout"]["status"] == 204
    assert r["logout"]["body"] == ""
    assert r["reasons"] == {"a1": ["io server disconnect"], "a2": ["io server disconnect"],
                            "b1": []}
    assert r["connected"] == {"a1": False, "a2": False, "b1": True}
    assert r["postB"] == "1" and r["b1counts"] == [[1]]
    # the old cookie meets a fresh session: the count restarts, under a new session id
    assert r["afterLogout"] == "1"
    assert r["newSid"] and r["newSid"] != r["oldSid"]


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_destroyed_session_closes_the_transport_within_a_reload_interval(
        scenario, session_type, transport, mode):
    r = scenario(session_type, transport, mode, "expiry")
    assert r["destroyed"]["deleted"] is True  # the session really was in the store
    assert r["reason"] == "transport close"
    # one reload interval (1 s) plus bounded slack for a loaded machine
    assert r["elapsed"] <= 1 + 8
    assert r["reconnected"] is True and r["sameId"] is False
    assert r["ackAfter"] == 1  # the reconnected socket meets a new, empty session
    # the other session's socket was left alone
    assert r["other"] == {"connected": True, "reasons": [], "ack": 1}


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_my_event_counts_for_a_socket_without_a_stored_session(scenario, session_type,
                                                               transport, mode):
    """A client with no session cookie, or a stale one: "my event" counts 1, 2 on the
    socket's own session and the socket stays connected."""
    r = scenario(session_type, transport, mode, "noSession")
    assert r["none"] == [{"ack": 1}, {"ack": 2}]
    assert r["stale"] == [{"ack": 1}, {"ack": 2}]


def _cookie_names(header: str | list[str] | None) -> dict[str, str]:
    if header is None:
        return {}
    parts = header if isinstance(header, list) else [header]
    out = {}
    for part in "; ".join(parts).split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_cookies_on_the_wire(scenario, session_type, transport, mode):
    r = scenario(session_type, transport, mode, "wire")
    sid = r["engineId"]
    session_value = r["session"].split("=", 1)[1]
    records = [rec for rec in r["records"] if rec["sid"] in (None, sid)]
    assert r["acks"] == [1, 2]
    hs = records[0]
    assert hs["sid"] is None and hs["transport"] == transport
    assert hs["status"] == (101 if transport == "websocket" else 200)
    assert _cookie_names(hs["cookie"]) == {"session": session_value}
    assert hs["setCookie"] == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax",
                               "uid=1234; SameSite=Strict", "randomId=abc; Max-Age=86400"]
    later = records[1:]
    if transport == "websocket":
        assert later == []
        return
    assert len(later) >= 3 and all(rec["sid"] == sid for rec in later)
    for rec in later:
        cookies = _cookie_names(rec["cookie"])
        if mode == "header":
            # the client keeps nothing: exactly what extraHeaders says, every time, and
            # so the server asks for randomId on every response
            assert cookies == {"session": session_value}
            if rec["status"] is not None:
                assert rec["setCookie"] == ["randomId=abc; Max-Age=86400"]
        else:
            # withCredentials: the client's own jar sends back what the handshake set
            assert cookies.get("io") == sid
            assert cookies.get("uid") == "1234"
            assert cookies.get("randomId") == "abc"
            if rec["status"] is not None:
                assert rec["setCookie"] == []  # randomId present: not set again
    if mode == "credentials":
        assert r["jar"] == {"io": sid, "uid": "1234", "randomId": "abc"}


def test_upgrade_request_carries_the_io_cookie(scenario, session_type):
    """withCredentials with polling then the upgrade: the WebSocket request carries
    ``io=<sid>`` (what a balancer sticking on the cookie needs) and the session cookie."""
    r = scenario(session_type, "polling", "credentials", "upgradeCookie")
    sid = r["engineId"]
    assert r["transport"] == "websocket" and r["ack"] == 1
    ws = [rec for rec in r["records"] if rec["transport"] == "websocket"]
    assert len(ws) == 1 and ws[0]["sid"] == sid and ws[0]["status"] == 101
    cookies = _cookie_names(ws[0]["cookie"])
    assert cookies["io"] == sid and "session" in cookies
    assert ws[0]["setCookie"] == []  # randomId sent: the headers hook adds nothing


@pytest.mark.parametrize(("transport", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_node_client_from_a_foreign_origin_gets_connect_error(scenario, session_type,
                                                              transport, mode):
    r = scenario(session_type, transport, mode, "origins")
    assert r["evil"]["connected"] is False
    assert "403" in r["evil"]["description"], r["evil"]
    assert r["allowed"] == {"connected": True, "ack": 1}


# -- headers of SPEC §3 with raw HTTP -----------------------------------------------------


def set_cookies(response: requests.Response) -> list[str]:
    return list(response.raw.headers.getlist("Set-Cookie"))


def handshake(demo: Any, **kwargs: Any) -> tuple[requests.Response, str]:
    r = requests.get(f"{demo.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                     timeout=TIMEOUT, **kwargs)
    assert r.status_code == 200, r.text
    assert r.text.startswith("0{")
    return r, json.loads(r.text[1:])["sid"]


def new_session(demo: Any) -> str:
    r = requests.get(demo.url + "/", timeout=TIMEOUT)
    assert r.status_code == 200
    return r.cookies["session"]


def test_handshake_sets_the_io_and_uid_cookies(demo):
    r, sid = handshake(demo)
    assert set_cookies(r) == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax",
                              "uid=1234; SameSite=Strict", "randomId=abc; Max-Age=86400"]
    r, sid = handshake(demo, cookies={"randomId": "abc"})
    assert set_cookies(r) == [f"io={sid}; Path=/; HttpOnly; SameSite=Lax",
                              "uid=1234; SameSite=Strict"]


def test_random_id_only_when_the_request_lacks_it(demo):
    session = new_session(demo)
    _, sid = handshake(demo, cookies={"session": session})
    url = f"{demo.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    # POST (the Socket.IO CONNECT) without randomId: set; initial_headers not repeated
    r = requests.post(url, data="40", timeout=TIMEOUT, cookies={"session": session})
    assert r.status_code == 200 and r.text == "ok"
    assert set_cookies(r) == ["randomId=abc; Max-Age=86400"]
    # GET (the CONNECT answer) with randomId: nothing set
    r = requests.get(url, timeout=TIMEOUT, cookies={"session": session, "randomId": "abc"})
    assert r.status_code == 200 and r.text.startswith("40{")
    assert set_cookies(r) == []
    # a POST with randomId: nothing; a Flask route is no Engine.IO response: nothing
    r = requests.post(url, data="3", timeout=TIMEOUT, cookies={"randomId": "abc"})
    assert r.status_code == 200 and set_cookies(r) == []
    r = requests.get(demo.url + "/", timeout=TIMEOUT, cookies={"session": session})
    assert not any(c.startswith(("randomId=", "io=", "uid=")) for c in set_cookies(r))


def raw_request(port: int, request: str, timeout: float = TIMEOUT) -> tuple[str, list[str]]:
    """Send ``request``; return the status line and header lines of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request.encode("latin-1"))
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no complete response head: {data!r}")
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *headers = head.split("\r\n")
    return status, headers


def ws_request(port: int, query: str, cookie: str | None = None,
               origin: str | None = None) -> tuple[str, list[str]]:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET /socket.io/?{query} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             "Sec-WebSocket-Version: 13"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if origin:
        lines.append(f"Origin: {origin}")
    return raw_request(port, "\r\n".join(lines) + "\r\n\r\n")


def header_values(headers: list[str], name: str) -> list[str]:
    out = []
    for line in headers:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            out.append(value.strip())
    return out


def test_websocket_101_carries_the_hook_cookies(demo):
    session = new_session(demo)
    # a WebSocket handshake: io, uid (initial_headers) and randomId (headers)
    status, headers = ws_request(demo.port, "EIO=4&transport=websocket",
                                 cookie=f"session={session}")
    assert status.startswith("HTTP/1.1 101"), status
    cookies = header_values(headers, "Set-Cookie")
    assert len(cookies) == 3
    assert cookies[0].startswith("io=") and cookies[0].endswith("; Path=/; HttpOnly; SameSite=Lax")
    assert cookies[1:] == ["uid=1234; SameSite=Strict", "randomId=abc; Max-Age=86400"]
    # the upgrade of a polling session: the headers hook only
    _, sid = handshake(demo, cookies={"session": session})
    status, headers = ws_request(demo.port, f"EIO=4&transport=websocket&sid={sid}",
                                 cookie=f"session={session}")
    assert status.startswith("HTTP/1.1 101"), status
    assert header_values(headers, "Set-Cookie") == ["randomId=abc; Max-Age=86400"]
    # ... and nothing when the request has randomId
    _, sid = handshake(demo, cookies={"session": session})
    status, headers = ws_request(demo.port, f"EIO=4&transport=websocket&sid={sid}",
                                 cookie=f"session={session}; randomId=abc")
    assert status.startswith("HTTP/1.1 101"), status
    assert header_values(headers, "Set-Cookie") == []


# -- CORS ---------------------------------------------------------------------------------


def assert_cors(response: requests.Response) -> None:
    assert response.headers.get("Access-Control-Allow-Origin") == ALLOWED, response.headers
    assert response.headers.get("Access-Control-Allow-Credentials") == "true", response.headers


def test_cors_allows_the_configured_origin_with_credentials(demo):
    session = new_session(demo)
    cookies = {"session": session}
    origin = {"Origin": ALLOWED}
    preflight = {**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    # Socket.IO: preflight, handshake, POST and GET of the session
    r = requests.options(f"{demo.url}/socket.io/?EIO=4&transport=polling", headers=preflight,
                         timeout=TIMEOUT)
    assert r.status_code in (200, 204)
    assert_cors(r)
    assert "POST" in r.headers.get("Access-Control-Allow-Methods", "")
    assert "content-type" in r.headers.get("Access-Control-Allow-Headers", "").lower()
    r, sid = handshake(demo, headers=origin, cookies=cookies)
    assert_cors(r)
    url = f"{demo.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    r = requests.post(url, data="40", headers=origin, cookies=cookies, timeout=TIMEOUT)
    assert r.status_code == 200
    assert_cors(r)
    r = requests.get(url, headers=origin, cookies=cookies, timeout=TIMEOUT)
    assert r.status_code == 200 and r.text.startswith("40{")
    assert_cors(r)
    # the Flask routes: preflight of /incr, POST /incr, GET /
    r = requests.options(f"{demo.url}/incr", headers=preflight, timeout=TIMEOUT)
    assert r.status_code in (200, 204)
    assert_cors(r)
    assert "POST" in r.headers.get("Access-Control-Allow-Methods", "")
    r = requests.post(f"{demo.url}/incr", headers=origin, cookies=cookies, timeout=TIMEOUT)
    assert r.status_code == 200 and r.text == "1"
    assert_cors(r)
    r = requests.get(f"{demo.url}/", headers=origin, cookies=cookies, timeout=TIMEOUT)
    assert r.status_code == 200
    assert_cors(r)


def test_cors_refuses_a_foreign_origin(demo):
    session = new_session(demo)
    cookies = {"session": session}
    evil = {"Origin": EVIL}
    r = requests.get(f"{demo.url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                     headers=evil, cookies=cookies, timeout=TIMEOUT)
    assert r.status_code == 403
    assert r.json()["code"] == 4
    assert "Access-Control-Allow-Origin" not in r.headers
    assert not any(c.startswith("io=") for c in set_cookies(r))
    # a WebSocket handshake and the upgrade of an existing session, from that origin
    status, _ = ws_request(demo.port, "EIO=4&transport=websocket", cookie=f"session={session}",
                           origin=EVIL)
    assert status.startswith("HTTP/1.1 403"), status
    _, sid = handshake(demo, cookies=cookies)
    status, _ = ws_request(demo.port, f"EIO=4&transport=websocket&sid={sid}",
                           cookie=f"session={session}", origin=EVIL)
    assert status.startswith("HTTP/1.1 403"), status
    # the Flask routes give a foreign origin no CORS headers
    r = requests.options(f"{demo.url}/incr", headers={**evil, "Access-Control-Request-Method":
                                                      "POST"}, timeout=TIMEOUT)
    assert "Access-Control-Allow-Origin" not in r.headers
    # and the allowed origin may open a WebSocket
    status, _ = ws_request(demo.port, "EIO=4&transport=websocket", cookie=f"session={session}",
                           origin=ALLOWED)
    assert status.startswith("HTTP/1.1 101"), status


# -- other ways to run the demo -----------------------------------------------------------


@pytest.mark.parametrize("run", ["flask", "gunicorn"])
def test_demo_runs_under(demo_server, run):
    """``flask --app demo.app run`` and gunicorn with the project's eventlet worker serve
    the whole counter flow to the Node client, websocket-only and polling-only."""
    demo = demo_server("cachelib", run=run)
    only = ["rooms", "ack", "logout", "expiry"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = {t: pool.submit(client_report, demo, t, "credentials", only)
                   for t in ("websocket", "polling")}
    for transport, future in reports.items():
        results = future.result()["results"]
        for name, result in results.items():
            assert "error" not in result, f"{run} {transport} {name}: {result['error']}"
        assert results["rooms"]["a1"] == [[1], [2]] and results["rooms"]["b1"] == [[1]]
        assert results["rooms"]["transports"] == [transport] * 3
        assert results["ack"]["acks"] == [2, 4, 5] and results["ack"]["page"] == 6
        assert results["logout"]["reasons"]["a1"] == ["io server disconnect"]
        assert results["logout"]["connected"]["b1"] is True
        assert results["logout"]["afterLogout"] == "1"
        assert results["expiry"]["reason"] == "transport close"
        assert results["expiry"]["reconnected"] is True
