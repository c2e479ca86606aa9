"""The Flask session shared with sockets (``io.engine.use(app.session_interface)``).

``tests/servers/session_app.py`` runs as a real eventlet process per session setup
(Flask-Session with ``cachelib`` files or a real ``redis-server``, and Flask's
signed-cookie session); the python-socketio client triggers handlers that ack what they
saw of ``socket.request.session``, and ``requests`` plays the HTTP views' side with the
same session cookie. The last tests interleave the demo's counter flow: many POST /incr
and many "my event" on one session at once, and no increment may be lost.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import engineio.payload
import pytest
import requests
import socketio

from helpers import PYTHON, TESTS, Proc, free_port

TIMEOUT = 10
TRANSPORTS = ["websocket", "polling"]


class App:
    def __init__(self, proc: Proc, session_type: str, env: dict[str, str]) -> None:
        self.proc = proc
        self.session_type = session_type
        self.session_dir = env["SESSION_DIR"]
        self.redis_url = env.get("REDIS_URL")
        self.url = f"http://127.0.0.1:{proc.port}"


@pytest.fixture(scope="module")
def session_app(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], App]]:
    """``session_app(session_type, reload_interval=None)``: the session test app, started
    once per (type, interval)."""
    apps: dict[tuple[str, float | None], App] = {}

    def get(session_type: str, reload_interval: float | None = None) -> App:
        key = (session_type, reload_interval)
        if key not in apps:
            port = free_port()
            env = {"SESSION_TYPE": session_type,
                   "SESSION_DIR": str(tmp_path_factory.mktemp(f"sessions-{session_type}"))}
            if reload_interval:
                env["RELOAD_INTERVAL"] = str(reload_interval)
            if session_type == "redis":
                env["REDIS_URL"] = request.getfixturevalue("redis_server").url
            proc = Proc([PYTHON, str(TESTS / "servers" / "session_app.py"), str(port)],
                        port=port, env=env, name=f"session-{session_type}")
            apps[key] = App(proc, session_type, env)
        return apps[key]

    yield get
    for app in apps.values():
        app.proc.stop()


@pytest.fixture(params=["cachelib", "redis"])
def server_side(request: pytest.FixtureRequest, session_app: Callable[[str], App]) -> App:
    return session_app(str(request.param))


@pytest.fixture
def clients() -> Iterator[Callable[..., socketio.Client]]:
    """``connect(url, cookie, transport)``: a connected python-socketio client."""
    made: list[socketio.Client] = []

    def connect(url: str, cookie: str, transport: str = "websocket") -> socketio.Client:
        sio = socketio.Client(reconnection=False)
        made.append(sio)
        sio.connect(url, headers={"Cookie": cookie} if cookie else {},
                    transports=[transport], wait_timeout=TIMEOUT)
        return sio

    yield connect
    for sio in made:
        sio.disconnect()


def browser(app: App, **data: str) -> tuple[requests.Session, str]:
    """A client with a stored session holding ``data``; returns it and the cookie."""
    http = requests.Session()
    r = http.post(f"{app.url}/set", data=data or {"user": "someone"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return http, f"session={http.cookies['session']}"


def view(http: requests.Session, app: App) -> dict[str, Any]:
    r = http.get(f"{app.url}/get", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_socket_session_is_the_handshake_session(server_side, clients, transport):
    http, cookie = browser(server_side, user="alice")
    seen_by_view = view(http, server_side)
    sio = clients(server_side.url, cookie, transport)
    info = sio.call("info", timeout=TIMEOUT)
    assert info["type"] == "SocketSession"
    assert info["sid"] == seen_by_view["sid"] == http.cookies["session"]
    assert info["data"] == {"user": "alice"}
    assert info["exists"] is True and info["gone"] is False
    # flask.session in a handler is that same object
    assert info["in_request"] is True and info["flask_session_is_it"] is True
    assert sio.call("info", timeout=TIMEOUT)["id"] == info["id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reload_sees_a_views_write_in_the_same_object(server_side, clients, transport):
    http, cookie = browser(server_side, user="alice")
    sio = clients(server_side.url, cookie, transport)
    first = sio.call("info", timeout=TIMEOUT)
    r = http.post(f"{server_side.url}/set", data={"color": "blue"}, timeout=TIMEOUT)
    assert r.json()["data"] == {"user": "alice", "color": "blue"}
    reloaded = sio.call("reload", timeout=TIMEOUT)
    assert reloaded["returned"] is True and reloaded["exists"] is True
    assert reloaded["data"] == {"user": "alice", "color": "blue"}
    assert reloaded["id"] == first["id"] and reloaded["sid"] == first["sid"]
    later = sio.call("info", timeout=TIMEOUT)  # a later handler, no reload
    assert later["data"] == {"user": "alice", "color": "blue"}
    assert later["id"] == first["id"] and later["flask_session_is_it"] is True


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_save_from_a_handler_is_visible_to_the_next_view(server_side, clients, transport):
    http, cookie = browser(server_side, user="alice")
    sio = clients(server_side.url, cookie, transport)
    saved = sio.call("set", ("lang", "fr"), timeout=TIMEOUT)
    assert "error" not in saved, saved
    assert view(http, server_side)["data"] == {"user": "alice", "lang": "fr"}
    # through flask.session, without reload()
    saved = sio.call("set without reload", ("theme", "dark"), timeout=TIMEOUT)
    assert "error" not in saved, saved
    assert view(http, server_side)["data"] == {"user": "alice", "lang": "fr", "theme": "dark"}
    # the view's cookie still names the same session
    assert view(http, server_side)["sid"] == saved["sid"]


def test_save_from_a_background_green_thread(server_side, clients):
    http, cookie = browser(server_side, user="alice")
    sio = clients(server_side.url, cookie)
    done = threading.Event()
    got: list[Any] = []

    @sio.on("bg saved")
    def bg_saved(result):
        got.append(result)
        done.set()

    assert sio.call("bg save", ("from", "green thread"), timeout=TIMEOUT) == "spawned"
    assert done.wait(TIMEOUT), "the green thread never reported"
    result = got[0]
    assert "error" not in result, result
    assert result["in_request"] is False  # no request context in the green thread
    assert result["data"] == {"user": "alice", "from": "green thread"}
    assert view(http, server_side)["data"] == {"user": "alice", "from": "green thread"}


def test_destroyed_session_reloads_as_gone(server_side, clients):
    http, cookie = browser(server_side, user="alice")
    sio = clients(server_side.url, cookie)
    before = sio.call("reload", timeout=TIMEOUT)
    assert before["returned"] is True and before["gone"] is False
    r = http.post(f"{server_side.url}/destroy", timeout=TIMEOUT)
    assert r.json()["sid"] == before["sid"]
    after = sio.call("reload", timeout=TIMEOUT)
    assert after["returned"] is False
    assert after["exists"] is False and after["gone"] is True
    assert after["data"] == {}
    assert after["sid"] == before["sid"]  # the sid the rooms know is kept
    saved = sio.call("save", timeout=TIMEOUT)
    assert saved["error"] == "SessionSaveError" and saved["is_session_save_error"] is True


def test_a_session_destroyed_in_the_store_reloads_as_gone(server_side, clients):
    """Expiry behind the app's back: the store loses the session (the redis key, or the
    cachelib file is removed), and ``reload()`` says so."""
    import hashlib
    import os

    import redis

    http, cookie = browser(server_side, user="alice")
    sid = http.cookies["session"]
    sio = clients(server_side.url, cookie)
    assert sio.call("reload", timeout=TIMEOUT)["returned"] is True
    if server_side.session_type == "redis":
        assert redis.from_url(server_side.redis_url).delete(f"session:{sid}") == 1
    else:  # Flask-Session's key is "session:<sid>"; cachelib names the file sha256(key)
        digest = hashlib.sha256(f"session:{sid}".encode()).hexdigest()
        os.remove(os.path.join(server_side.session_dir, digest))
    after = sio.call("reload", timeout=TIMEOUT)
    assert after["returned"] is False and after["gone"] is True and after["data"] == {}


@pytest.mark.parametrize("session_type", ["cachelib", "redis"])
def test_periodic_reload_does_not_undo_a_handlers_unsaved_change(session_app, clients,
                                                                 session_type):
    """A handler reloads, increments, and before its save() the periodic reload
    (session_reload_interval) runs once for the same socket: the increment must be saved."""
    app = session_app(session_type, reload_interval=0.1)
    http, cookie = browser(app, user="alice")
    sio = clients(app.url, cookie)
    r = sio.call("incr while reloaded", timeout=30)
    assert r["periodic_reload_ran"] is True, r  # the situation under test did happen
    assert r["mine"] == 1
    assert view(http, app)["data"].get("count") == 1, r
    assert r["after_save"] == 1, r


def test_periodic_reload_does_not_free_a_handlers_session_lock(session_app, clients):
    app = session_app("cachelib", reload_interval=0.1)
    http, cookie = browser(app, user="alice")
    sio = clients(app.url, cookie)
    posted: list[str] = []
    done = threading.Event()

    def post() -> None:
        posted.append(http.post(f"{app.url}/incr", timeout=30).text)
        done.set()

    sio.on("post now", lambda: threading.Thread(target=post).start())
    r = sio.call("incr while a view waits", timeout=30)
    assert done.wait(30)
    assert r["periodic_reload_ran"] is True and r["view_arrived"] is True, r
    assert r["view_got_in"] is False, r  # the view waited for the handler's save
    assert posted == ["2"] and view(http, app)["data"]["count"] == 2


@pytest.mark.parametrize("cookie", [None, "session=no-such-session-id"], ids=["none", "stale"])
def test_a_sockets_own_new_session_survives_save_and_reload(server_side, clients, cookie):
    sio = clients(server_side.url, cookie)
    first = sio.call("set", ("a", "1"), timeout=TIMEOUT)  # locked(): reload, set, save
    assert "error" not in first, first
    assert first["data"] == {"a": "1"} and first["exists"] is True
    again = sio.call("reload", timeout=TIMEOUT)
    assert again["returned"] is True and again["gone"] is False, again
    assert again["data"] == {"a": "1"} and again["sid"] == first["sid"]
    second = sio.call("set", ("b", "2"), timeout=TIMEOUT)
    assert "error" not in second, second
    assert second["data"] == {"a": "1", "b": "2"}


# -- the signed-cookie session ------------------------------------------------------------


@pytest.fixture
def cookie_app(session_app: Callable[[str], App]) -> App:
    return session_app("cookie")


def test_signed_cookie_session_is_readable_in_handlers(cookie_app, clients):
    http, cookie = browser(cookie_app, user="bob")
    sio = clients(cookie_app.url, cookie)
    info = sio.call("info", timeout=TIMEOUT)
    assert info["type"] == "SocketSession"
    assert info["data"] == {"user": "bob"}
    assert info["sid"] is None
    assert info["flask_session_is_it"] is True


def test_signed_cookie_session_save_raises_naming_flask_session(cookie_app, clients):
    http, cookie = browser(cookie_app, user="bob")
    sio = clients(cookie_app.url, cookie)
    saved = sio.call("save", timeout=TIMEOUT)
    assert saved["error"] == "SessionSaveError" and saved["is_session_save_error"] is True
    assert "Flask-Session" in saved["message"]
    changed = sio.call("set without reload", ("user", "mallory"), timeout=TIMEOUT)
    assert changed["error"] == "SessionSaveError" and "Flask-Session" in changed["message"]
    # nothing reached the browser's cookie
    assert view(http, cookie_app)["data"] == {"user": "bob"}


def test_signed_cookie_session_reload_raises_naming_flask_session(cookie_app, clients):
    http, cookie = browser(cookie_app, user="bob")
    sio = clients(cookie_app.url, cookie)
    reloaded = sio.call("reload", timeout=TIMEOUT)
    assert reloaded.get("error") == "SessionSaveError", reloaded
    assert reloaded["is_session_save_error"] is True
    assert "Flask-Session" in reloaded["message"]


# -- the seed counter flow under interleaving ---------------------------------------------


def page_count(html: str) -> int:
    m = re.search(r'data-testid="count">\s*(\d+)\s*<', html)
    assert m, html
    return int(m.group(1))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("session_type", "run"),
                         [("cachelib", "module"), ("redis", "module"), ("cachelib", "flask")],
                         ids=["cachelib", "redis", "cachelib-flask-run"])
def test_no_lost_increment_under_interleaving(demo_server, clients, monkeypatch,
                                             session_type, run, transport):
    """50 POST /incr from threads and 50 "my event" from one socket of the same session,
    at the same time: every increment is counted once (the demo under ``python -m demo``,
    and under ``flask run`` where views and handlers are OS threads)."""
    # The server answers a poll with everything queued (acks and "current count"s), as
    # Node's engine.io does; python-engineio's client refuses payloads of more than 16
    # packets by default, a client-side limit raised here.
    monkeypatch.setattr(engineio.payload.Payload, "max_decode_packets", 1000)
    n = 50
    demo = demo_server(session_type, run=run)
    r = requests.get(demo.url + "/", timeout=TIMEOUT)
    session = r.cookies["session"]
    sio = clients(demo.url, f"session={session}", transport)
    acks: list[int] = []
    lock = threading.Lock()
    all_acked = threading.Event()

    def on_ack(count: int) -> None:
        with lock:
            acks.append(count)
            if len(acks) == n:
                all_acked.set()

    start = threading.Barrier(2, timeout=TIMEOUT)

    def post(_: int) -> str:
        r = requests.post(demo.url + "/incr", cookies={"session": session}, timeout=30)
        assert r.status_code == 200, r.text
        return r.text

    def emit_all() -> None:
        start.wait()
        for _ in range(n):
            sio.emit("my event", callback=on_ack)

    emitter = threading.Thread(target=emit_all)
    emitter.start()
    with ThreadPoolExecutor(max_workers=n) as pool:
        start.wait()
        posted = list(pool.map(post, range(n)))
    emitter.join(TIMEOUT)
    assert all_acked.wait(60), f"only {len(acks)} acks"
    values = sorted([int(v) for v in posted] + acks)
    assert values == list(range(1, 2 * n + 1))
    final = requests.get(demo.url + "/", cookies={"session": session}, timeout=TIMEOUT)
    assert page_count(final.text) == 2 * n
