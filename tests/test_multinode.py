"""The demo on several gunicorn nodes behind a real load balancer, as docs/deploy.md
deploys it: a real redis-server for the sessions (``SESSION_TYPE=redis``), another
for the message queue (``MESSAGE_QUEUE``, so that it can be restarted alone), nodes
``node1`` and ``node2`` running ``demo.app:app`` behind the balancer, and ``node3``
running ``tests/servers/cluster_demo.py`` (the demo plus ``GET /_cluster/sockets``)
outside it. The balancers are the configuration files shipped in docs/, rendered with
free ports only: HAProxy (``docs/haproxy.cfg``) and nginx (``docs/nginx.conf``).

Every wait is bounded and waits for an event or a state, never for time to pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import socketio

from helpers import PYTHON, ROOT, Proc, free_port, run_node, wait_port

WAIT = 15.0
DOCS = ROOT / "docs"
BALANCED = ("node1", "node2")


def render(template: Path, ports: dict[str, int]) -> str:
    text = template.read_text()
    for name, port in ports.items():
        text = text.replace("{{" + name + "}}", str(port))
    left = re.findall(r"\{\{[A-Z0-9_]+\}\}", text)
    assert not left, f"placeholders left unrendered: {left}"
    return text


# -- the cluster --------------------------------------------------------------------------


class Cluster:
    def __init__(self, sessions_url: str, queue: Any) -> None:
        self.sessions_url = sessions_url
        self.queue = queue
        self.ports = {name: free_port() for name in ("node1", "node2", "node3")}
        self.procs: dict[str, Proc] = {}

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.ports[node]}"

    def _spawn(self, node: str) -> Proc:
        port = self.ports[node]
        app = "cluster_demo:app" if node == "node3" else "demo.app:app"
        args = [PYTHON, "-m", "gunicorn", "-k", "flask_ioengine.gunicorn.EventletWorker",
                "-w", "1", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2",
                "--no-control-socket", "--pythonpath", str(ROOT / "tests" / "servers"), app]
        env = {"SESSION_TYPE": "redis", "REDIS_URL": self.sessions_url,
               "MESSAGE_QUEUE": self.queue.url, "PORT": str(port)}
        return Proc(args, env=env, name=f"multinode-{node}")

    def start(self, *nodes: str) -> None:
        for node in nodes:  # boot in parallel, then wait for each
            self.procs[node] = self._spawn(node)
        for node in nodes:
            try:
                wait_port(self.ports[node], timeout=30, proc=self.procs[node].proc)
            except Exception:
                raise RuntimeError(f"{node} did not start:\n{self.procs[node].output()}") from None
        self.wait_subscribed()

    def kill(self, node: str) -> None:
        """SIGKILL the node's gunicorn (arbiter and worker: its process group)."""
        self.procs[node].stop(signal.SIGKILL)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        """Until every running node listens on the message queue."""
        want = sum(1 for p in self.procs.values() if p.proc.poll() is None)
        deadline = time.monotonic() + timeout
        n = -1
        while time.monotonic() < deadline:
            try:
                r = redis.Redis.from_url(self.queue.url, socket_connect_timeout=2)
                try:
                    n = int(r.pubsub_numsub("flask_ioengine-request#/#")[0][1])
                finally:
                    r.close()
            except redis.RedisError:
                n = -1
            if n == want:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{want} nodes should listen on the queue, Redis counts {n}")


@pytest.fixture(scope="module")
def cluster(redis_server, private_redis) -> Iterator[Cluster]:
    c = Cluster(redis_server.url, private_redis())
    try:
        c.start("node1", "node2", "node3")
        yield c
    finally:
        c.stop()


# -- the balancers ------------------------------------------------------------------------


class Balancer:
    def __init__(self, name: str, port: int, proc: Proc) -> None:
        self.name = name
        self.port = port
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"

    def node_of(self, cookies: dict[str, str]) -> str:
        """The node a client sticks to, read from the balancer's sticky cookie."""
        if self.name == "haproxy":
            return cookies["io"].split("~", 1)[0]  # "io=node1~<engine sid>"
        return cookies["ioengine_node"].removeprefix("ioengine_")


def start_haproxy(cluster: Cluster, tmp: Path, cfg: Path = DOCS / "haproxy.cfg",
                  edit: Callable[[str], str] = lambda text: text) -> Balancer:
    port = free_port()
    conf = tmp / "haproxy.cfg"
    conf.write_text(edit(render(cfg, {"LISTEN_PORT": port, "NODE1_PORT": cluster.ports["node1"],
                                      "NODE2_PORT": cluster.ports["node2"]})))
    exe = shutil.which("haproxy")
    if exe is None:
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    return Balancer("haproxy", port, Proc([exe, "-f", str(conf), "-db"], port=port,
                                          name="haproxy"))


def start_nginx(cluster: Cluster, tmp: Path) -> Balancer:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        pytest.skip("nginx is not installed (Debian package nginx)")
    port = free_port()
    prefix = tmp / "nginx"
    prefix.mkdir()
    site = prefix / "flask_ioengine.conf"  # docs/nginx.conf, ports filled in
    site.write_text(render(DOCS / "nginx.conf", {
        "LISTEN_PORT": port, "NODE1_PORT": cluster.ports["node1"],
        "NODE2_PORT": cluster.ports["node2"]}))
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = prefix / "nginx.conf"  # what a distribution's nginx.conf provides around it
    main.write_text(f"""{user}worker_processes 1;
pid nginx.pid;
error_log error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    include {site};
}}
""")
    proc = Proc([exe, "-p", f"{prefix}/", "-c", str(main), "-e", str(prefix / "error.log"),
                 "-g", "daemon off;"], port=port, name="nginx")
    return Balancer("nginx", port, proc)


@pytest.fixture(scope="module", params=["haproxy", "nginx"])
def balancer(request, cluster, tmp_path_factory) -> Iterator[Balancer]:
    tmp = tmp_path_factory.mktemp(request.param)
    lb = start_haproxy(cluster, tmp) if request.param == "haproxy" else start_nginx(cluster, tmp)
    yield lb
    lb.proc.stop()


# -- clients ------------------------------------------------------------------------------


def browser(url: str, pages: int = 1) -> requests.Session:
    """A cookie jar that loaded the demo page (``pages`` times): it has a Flask session
    (count 0). Varying ``pages`` varies which node a round-robin balancer gives the
    handshake that follows."""
    http = requests.Session()
    for _ in range(pages):
        r = http.get(url + "/", timeout=WAIT)
        assert r.status_code == 200 and "session" in http.cookies
    return http


def cookies(http: requests.Session) -> dict[str, str]:
    return {c.name: c.value for c in http.cookies}


class Tab:
    """A python-socketio client sharing a browser's cookie jar (``http_session``)."""

    def __init__(self, http: requests.Session, url: str, reconnect: bool = False,
                 transports: list[str] | None = None) -> None:
        self.http = http
        self.sio = socketio.Client(http_session=http, reconnection=reconnect,
                                   reconnection_delay=0.2, reconnection_delay_max=1,
                                   randomization_factor=0, handle_sigint=False)
        self.counts: list[int] = []
        self.connects = 0
        self.cond = threading.Condition()
        self.disconnected = threading.Event()
        self.disconnect_reasons: list[Any] = []
        self.sio.on("current count", self._count)
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.connect(url, transports=transports or ["polling", "websocket"],
                         wait_timeout=WAIT)

    def _count(self, n: int) -> None:
        with self.cond:
            self.counts.append(n)
            self.cond.notify_all()

    def _connect(self) -> None:
        with self.cond:
            self.connects += 1
            self.cond.notify_all()

    def _disconnect(self, *reason: Any) -> None:
        self.disconnect_reasons.append(reason[0] if reason else None)
        self.disconnected.set()

    def wait_until(self, pred: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what}: counts={self.counts} connects={self.connects}")
                self.cond.wait(left)

    def wait_count(self, n: int, timeout: float = WAIT) -> None:
        self.wait_until(lambda: n in self.counts, f"count {n}", timeout)

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def tabs() -> Iterator[Callable[..., Tab]]:
    made: list[Tab] = []

    def make(http: requests.Session, url: str, **kw: Any) -> Tab:
        tab = Tab(http, url, **kw)
        made.append(tab)
        return tab

    yield make
    for tab in made:
        tab.close()


def tab_on_each_node(balancer: Balancer, make: Callable[..., Tab], tries: int = 20,
                     **kw: Any) -> dict[str, tuple[requests.Session, Tab]]:
    """Connect browsers through the balancer until each balanced node has one."""
    found: dict[str, tuple[requests.Session, Tab]] = {}
    for attempt in range(tries):
        http = browser(balancer.url, pages=1 + attempt % 2)
        tab = make(http, balancer.url, **kw)
        node = balancer.node_of(cookies(http))
        if node in found:
            tab.close()
        else:
            found[node] = (http, tab)
        if set(found) == set(BALANCED):
            return found
    raise AssertionError(f"the balancer used only {sorted(found)} in {tries} connections")


def other(node: str) -> str:
    return BALANCED[1 - BALANCED.index(node)]


# -- raw long-polling through the balancer ------------------------------------------------


class RawPolling:
    """An Engine.IO long-polling session spoken with requests, as a browser would."""

    def __init__(self, http: requests.Session, url: str) -> None:
        self.http = http
        self.url = url + "/socket.io/"
        r = http.get(self.url, params={"EIO": "4", "transport": "polling"}, timeout=WAIT)
        assert r.status_code == 200 and r.text.startswith("0"), r.text
        self.sid = json.loads(r.text[1:])["sid"]

    def post(self, *packets: str) -> None:
        r = self.http.post(self.url, params={"EIO": "4", "transport": "polling", "sid": self.sid},
                           data="\x1e".join(packets).encode(), timeout=WAIT)
        assert r.status_code == 200 and r.text == "ok", (r.status_code, r.text)

    def get(self) -> list[str]:
        """One poll's packets, pongs sent for its pings, noops dropped."""
        r = self.http.get(self.url, params={"EIO": "4", "transport": "polling", "sid": self.sid},
                          timeout=60)
        assert r.status_code == 200, (r.status_code, r.text)
        packets = r.text.split("\x1e")
        if "2" in packets:
            self.post("3")
        return [p for p in packets if p not in ("2", "6")]

    def expect(self, pred: Callable[[str], bool], what: str) -> str:
        for _ in range(5):  # a poll may return only a ping
            for packet in self.get():
                assert pred(packet), f"{what}: got {packet!r}"
                return packet
        raise AssertionError(f"{what}: nothing but pings")


# -- tests --------------------------------------------------------------------------------


def test_deploy_md_shows_the_tested_configurations():
    """docs/deploy.md includes the very files these tests run, verbatim."""
    deploy = (DOCS / "deploy.md").read_text()
    for name in ("haproxy.cfg", "nginx.conf"):
        assert (DOCS / name).read_text() in deploy, f"docs/deploy.md lacks docs/{name}"


def test_raw_long_polling_keeps_its_session(balancer):
    """Handshake, then 50 POST/GET pairs carrying the cookies, on each node: every one
    reaches the node that owns the session (never "Session ID unknown")."""
    sessions: dict[str, tuple[requests.Session, RawPolling]] = {}
    for attempt in range(20):
        http = browser(balancer.url, pages=1 + attempt % 2)
        eio = RawPolling(http, balancer.url)
        sessions.setdefault(balancer.node_of(cookies(http)), (http, eio))
        if set(sessions) == set(BALANCED):
            break
    assert set(sessions) == set(BALANCED)
    for node, (http, eio) in sessions.items():
        eio.post("40")
        eio.expect(lambda p: p.startswith("40{"), "CONNECT answer")
        for i in range(1, 51):
            eio.post(f'42{i}["my event"]')
            eio.expect(lambda p, i=i: p == f"43{i}[{i}]", f"ack {i} of my event")
            assert balancer.node_of(cookies(http)) == node
        eio.post("1")


def test_raw_long_polling_without_stickiness_fails(cluster, tmp_path):
    """The control experiment: the same HAProxy file without its cookie line loses the
    session at once, which is what the test above would see with a bad config."""
    lb = start_haproxy(cluster, tmp_path,
                       edit=lambda text: text.replace("cookie io prefix nocache", ""))
    try:
        eio = RawPolling(browser(lb.url), lb.url)
        statuses = []
        for _ in range(4):  # round robin: the second request already goes elsewhere
            r = eio.http.get(eio.url, params={"EIO": "4", "transport": "polling",
                                               "sid": eio.sid}, timeout=60)
            statuses.append((r.status_code, r.json() if r.status_code == 400 else r.text))
            if r.status_code == 400:
                break
        assert (400, {"code": 1, "message": "Session ID unknown"}) in statuses, statuses
    finally:
        lb.proc.stop()


def sticky_clients(balancer: Balancer, rounds: int = 6, **cfg: Any) -> list[dict[str, Any]]:
    """multi_sticky.js through the balancer, again until both balanced nodes were used."""
    results: list[dict[str, Any]] = []
    for _ in range(rounds):
        out = run_node("multi_sticky.js", json.dumps({"url": balancer.url, **cfg}), timeout=120)
        results += out["clients"]
        if {balancer.node_of(c["cookies"]) for c in results} == set(BALANCED):
            return results
    raise AssertionError(f"only {sorted({balancer.node_of(c['cookies']) for c in results})}")


def test_node_client_polling_only_sticks(balancer):
    results = sticky_clients(balancer, transports=["polling"], clients=4, acks=50, upgrade=False)
    for c in results:
        assert c["errors"] == [] and c["disconnects"] == []
        assert c["transport"] == "polling"
        assert c["acks"] == list(range(1, 51))


def test_node_client_upgrades_to_websocket_through_the_balancer(balancer):
    results = sticky_clients(balancer, transports=["polling", "websocket"], clients=4, acks=10,
                             upgrade=True)
    for c in results:
        assert c["errors"] == [] and c["disconnects"] == []
        assert c["transport"] == "websocket"
        assert c["acks"] == list(range(1, 11))


def test_incr_on_another_node_reaches_the_socket(balancer, cluster, tabs):
    for node, (http, tab) in tab_on_each_node(balancer, tabs).items():
        r = http.post(cluster.url(other(node)) + "/incr", timeout=WAIT)  # node B, directly
        assert r.status_code == 200 and r.text == "1"
        tab.wait_count(1)
        r = http.post(cluster.url("node3") + "/incr", timeout=WAIT)
        assert r.text == "2"
        tab.wait_count(2)


def test_fetch_sockets_sees_every_node(balancer, cluster, tabs):
    placed = tab_on_each_node(balancer, tabs)
    http3 = browser(cluster.url("node3"))
    on3 = tabs(http3, cluster.url("node3"))
    r = http3.get(cluster.url("node3") + "/_cluster/sockets", timeout=WAIT)
    sockets = {s["id"]: s for s in r.json()}
    for _node, (http, tab) in placed.items():
        sid = tab.sio.get_sid()
        assert sockets[sid]["remote"] is True
        assert http.cookies["session"] in sockets[sid]["rooms"]  # the session's room
    assert sockets[on3.sio.get_sid()]["remote"] is False


def test_logout_on_one_node_disconnects_the_sessions_sockets_everywhere(balancer, cluster, tabs):
    for node, (http, tab) in tab_on_each_node(balancer, tabs).items():
        second = tabs(http, cluster.url("node3"))  # the same browser, another tab and node
        r = http.post(cluster.url(other(node)) + "/logout", timeout=WAIT)
        assert r.status_code == 204
        assert tab.disconnected.wait(WAIT) and second.disconnected.wait(WAIT)
        assert tab.disconnect_reasons == second.disconnect_reasons == ["server disconnect"]


def test_killed_node_clients_reconnect_to_the_other(balancer, cluster, tabs):
    placed = tab_on_each_node(balancer, tabs, reconnect=True)
    victim = "node1"
    http, tab = placed[victim]
    survivor_http, survivor = placed["node2"]
    assert http.post(cluster.url("node2") + "/incr", timeout=WAIT).text == "1"
    tab.wait_count(1)
    try:
        cluster.kill(victim)
        assert tab.disconnected.wait(WAIT)
        tab.wait_until(lambda: tab.connects >= 2, "reconnection through the balancer", 30)
        if balancer.name == "haproxy":  # nginx keeps naming the group; node2 is its backup
            assert balancer.node_of(cookies(http)) == "node2"
        live = http.get(cluster.url("node3") + "/_cluster/sockets", timeout=WAIT).json()
        assert tab.sio.get_sid() in {s["id"] for s in live}  # node1 is dead: on node2
        # the new connection is in the session's room again: room emits keep coming
        assert http.post(balancer.url + "/incr", timeout=WAIT).text == "2"
        tab.wait_count(2)
        assert survivor_http.post(cluster.url("node3") + "/incr", timeout=WAIT).text == "1"
        survivor.wait_count(1)
        assert not survivor.disconnected.is_set()
    finally:
        if cluster.procs[victim].proc.poll() is not None:
            cluster.start(victim)  # same port, for the tests that follow


def test_redis_restart_loses_no_local_delivery(cluster, tabs):
    """The message queue's Redis restarts (the sessions' Redis stays up): emits to this
    node's sockets never stop; other nodes' sockets get them again once it is back."""
    http = browser(cluster.url("node1"))
    here = tabs(http, cluster.url("node1"))
    jar = requests.Session()
    jar.cookies.set("session", http.cookies["session"])
    there = tabs(jar, cluster.url("node2"))  # another tab of the same browser, on node2
    assert http.post(cluster.url("node1") + "/incr", timeout=WAIT).text == "1"
    here.wait_count(1)
    there.wait_count(1)

    cluster.queue.stop()
    assert http.post(cluster.url("node1") + "/incr", timeout=WAIT).text == "2"
    here.wait_count(2)  # local delivery, with the queue down
    assert jar.post(cluster.url("node2") + "/incr", timeout=WAIT).text == "3"
    there.wait_count(3)
    cluster.procs["node1"].wait_output("unreachable", timeout=WAIT)

    cluster.queue.start()  # same port
    cluster.wait_subscribed()
    assert http.post(cluster.url("node1") + "/incr", timeout=WAIT).text == "4"
    here.wait_count(4)
    there.wait_count(4)  # cross-node delivery is back
    assert 2 not in there.counts and 3 not in here.counts  # dropped, never replayed
