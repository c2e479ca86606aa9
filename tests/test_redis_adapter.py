"""The Redis adapter with real processes: three nodes of ``tests/servers/cluster_app.py``
sharing a real ``redis-server``, python-socketio clients on each node, the cluster API
driven through each node's ``POST /op``.

Nothing here sleeps to synchronise: every wait is an event or a condition polled with
a deadline. "X did not receive Y" is checked after a later marker emitted by the same
node has arrived, since one node's messages reach every client in order.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_ioengine.socketio.adapters import pack, unpack
from flask_ioengine.socketio.adapters.redis import create_redis_adapter
from helpers import PYTHON, ROOT, TESTS, Proc, free_port, wait_port

WAIT = 10.0
NAMESPACES = ("/", "/admin")
KEY = "flask_ioengine"


# -- the cluster --------------------------------------------------------------------------


class Node:
    def __init__(self, name: str, proc: Proc) -> None:
        self.name = name
        self.proc = proc
        self.port = proc.port
        self.url = f"http://127.0.0.1:{proc.port}"

    def op(self, **spec: Any) -> dict[str, Any]:
        r = requests.post(self.url + "/op", json=spec, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def start_nodes(names: str, queue_url: str) -> dict[str, Node]:
    procs = {}
    for name in names:  # start them all, then wait: they boot in parallel
        port = free_port()
        procs[name] = (port, Proc([PYTHON, str(TESTS / "servers" / "cluster_app.py"), str(port)],
                                  env={"NODE": name, "IOENGINE_MESSAGE_QUEUE": queue_url},
                                  name=f"cluster-{name}"))
    nodes = {}
    for name, (port, proc) in procs.items():
        proc.port = port
        try:
            wait_port(port, proc=proc.proc)
        except Exception:
            raise RuntimeError(f"node {name} did not start:\n{proc.output()}") from None
        nodes[name] = Node(name, proc)
    wait_subscribed(queue_url, len(nodes))
    return nodes


def numsub(queue_url: str, nsp: str) -> int:
    r = redis.Redis.from_url(queue_url, socket_connect_timeout=2)
    try:
        return int(r.pubsub_numsub(f"{KEY}-request#{nsp}#")[0][1])
    finally:
        r.close()


def wait_subscribed(queue_url: str, n: int, timeout: float = 30.0) -> None:
    """Until ``n`` nodes listen on every namespace's request channel."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            counts = {nsp: numsub(queue_url, nsp) for nsp in NAMESPACES}
        except redis.RedisError:
            counts = {}
        if counts and all(c == n for c in counts.values()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{n} listeners expected per namespace, Redis says {counts}")


@pytest.fixture(scope="module")
def queue(private_redis):
    return private_redis()


@pytest.fixture(scope="module")
def nodes(queue) -> Iterator[dict[str, Node]]:
    started = start_nodes("ABC", queue.url)
    yield started
    for node in started.values():
        node.proc.stop()


# -- clients ------------------------------------------------------------------------------


def in_order(sio: socketio.Client) -> socketio.Client:
    """python-engineio's client hands each message to a new thread, so the attachment of
    a binary packet can be decoded before its header (python-socketio then fails with
    ``ValueError: invalid literal for int()`` in its thread, and the event is lost).
    Handle this client's messages in arrival order, in its reader thread."""
    trigger = sio.eio._trigger_event

    def ordered(event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return trigger(event, *args, **kwargs)

    sio.eio._trigger_event = ordered
    return sio


class Client:
    """A python-socketio client recording every event it receives."""

    def __init__(self, node: Node, rooms: list[str] = (), user: str = "", nsp: str = "/",
                 transport: str = "websocket") -> None:
        self.node = node
        self.nsp = nsp
        self.sio = in_order(socketio.Client(reconnection=False))
        self.events: list[tuple[str, tuple]] = []
        self.cond = threading.Condition()
        self.disconnected = threading.Event()
        self.disconnect_reason: Any = None
        self.sio.on("*", self._record, namespace=nsp)
        self.sio.on("question", self._question, namespace=nsp)
        self.sio.on("disconnect", self._on_disconnect, namespace=nsp)
        self.sio.connect(node.url, namespaces=[nsp], transports=[transport], wait_timeout=WAIT,
                         auth={"rooms": list(rooms), "user": user or secrets.token_hex(3)})
        self.id = self.sio.get_sid(nsp)

    def _record(self, event: str, *args: Any) -> None:
        with self.cond:
            self.events.append((event, args))
            self.cond.notify_all()

    def _question(self, *args: Any) -> Any:
        self._record("question", *args)
        return [self.node.name, self.id, b"\x00" + self.node.name.encode()]

    def _on_disconnect(self, *reason: Any) -> None:
        self.disconnect_reason = reason[0] if reason else None
        self.disconnected.set()

    def received(self, event: str) -> list[tuple]:
        with self.cond:
            return [args for ev, args in self.events if ev == event]

    def wait(self, event: str, pred: Callable[[tuple], bool] = lambda a: True,
             timeout: float = WAIT) -> tuple:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev, args in self.events:
                    if ev == event and pred(args):
                        return args
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.node.name}/{self.id}: no {event!r} matching; "
                                       f"got {self.events[-10:]}")
                self.cond.wait(left)

    def call(self, event: str, *args: Any) -> Any:
        data = None if not args else args[0] if len(args) == 1 else args
        return self.sio.call(event, data, namespace=self.nsp, timeout=WAIT)

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def client(nodes) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(node: str, *rooms: str, **kw: Any) -> Client:
        c = Client(nodes[node], list(rooms), **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def marker(node: Node, clients: list[Client], nsp: str = "/") -> None:
    """Emit a unique marker to everyone from ``node`` and wait until ``clients`` have it:
    whatever ``node`` emitted before has then reached them too."""
    token = secrets.token_hex(4)
    node.op(nsp=nsp, op="emit", event="marker", args=[token])
    for c in clients:
        c.wait("marker", lambda a: a == (token,))


def hexes(*values: bytes) -> list[dict[str, str]]:
    return [{"hex": v.hex()} for v in values]


# -- the codec, without Redis -------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["$b", "$d", "a", "_placeholder", "num"]) | st.text(),
                      inner, max_size=3),
    max_leaves=12)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_pack_unpack_round_trip(value):
    wire = json.dumps(pack(value), allow_nan=False)
    assert unpack(json.loads(wire)) == value


def test_pack_refuses_what_json_cannot_carry():
    for bad in (object(), {1: "int key"}, {1, 2}):
        with pytest.raises(TypeError):
            pack(bad)


def test_hostile_cluster_messages_are_logged_and_ignored(caplog):
    """Anything published on the channels: never an exception, never a crash."""
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: publishes just fail
    from flask_ioengine.socketio.server import Server

    server = Server(adapter=create_redis_adapter(dead, write_only=True))
    adapter = server.sockets.adapter
    pickled = b"\x80\x04\x95" + b"\x00" * 8  # what a pickle would look like
    for body in (pickled, b"not json", b"[]", b"{}", b'{"type": "nope", "uid": "x"}',
                 b'{"type": "broadcast", "uid": "x", "packet": "2"}',
                 b'{"type": "broadcast", "uid": "x", "packet": ["2[]", "!!"]}',
                 b'{"type": "broadcast", "uid": "x", "packet": ["2[]"], "opts": {"rooms": 1}}',
                 b'{"type": "server_side_emit", "uid": "x", "event": "connection", "args": []}',
                 b'{"type": "server_side_emit", "uid": "x", "event": "e", "args": {"$b": 1}}',
                 b'{"type": "broadcast_with_ack", "uid": "x", "rid": "r", "packet": ["1"]}',
                 b'{"type": "fetch_sockets_response", "uid": "x", "rid": 5}',
                 b'{"type": "broadcast_client_count", "uid": "x", "rid": "r", "count": -1}',
                 "\ud800".encode("utf-8", "surrogatepass")):
        adapter.on_cluster_message(body)
    assert "ignored" in caplog.text
    assert "Traceback" not in caplog.text
    # its own messages come back from Redis too: ignored without a word
    caplog.clear()
    adapter.on_cluster_message(json.dumps({"uid": adapter.uid, "type": "nope"}).encode())
    assert caplog.text == ""


# -- tests --------------------------------------------------------------------------------


def test_every_node_counts_the_cluster(nodes):
    for node in nodes.values():
        assert node.op(op="server_count") == {"count": 3}
        assert node.op(op="server_count", nsp="/admin") == {"count": 3}


def test_emit_to_rooms_all_and_except_crosses_nodes(nodes, client):
    a1 = client("A", "red")
    b1 = client("B", "red", transport="polling")
    b2 = client("B", "blue")
    c1 = client("C", "red", "green")
    A, B, C = nodes["A"], nodes["B"], nodes["C"]

    # to a room, with binary, from A: A's own client and the other nodes' clients
    A.op(op="emit", rooms=["red"], event="news", args=[1, {"hex": "00ff10"}, "é"])
    for c in (a1, b1, c1):
        assert c.wait("news") == (1, b"\x00\xff\x10", "é")
    # to all but a room, from B
    B.op(op="emit", **{"except": ["green"]}, event="all but green", args=["x"])
    for c in (a1, b1, b2):
        c.wait("all but green")
    marker(B, [c1])
    assert c1.received("all but green") == []
    # rooms AND except, from C (volatile is checked on the wire: it may drop by design)
    C.op(op="emit", rooms=["red", "blue"], **{"except": ["green"]}, event="red or blue",
         args=[])
    for c in (a1, b1, b2):
        c.wait("red or blue")
    # local: this node's sockets only
    A.op(op="emit", rooms=["red"], local=True, event="local only", args=[])
    a1.wait("local only")
    marker(A, [b1, b2, c1])
    assert b1.received("local only") == [] and c1.received("local only") == []
    assert b2.received("news") == []
    marker(C, [c1])
    assert c1.received("red or blue") == []


def test_namespaces_stay_apart(nodes, client):
    root = client("B", "staff")
    admin = client("C", "staff", nsp="/admin")
    nodes["A"].op(nsp="/admin", op="emit", rooms=["staff"], event="audit", args=[{"n": 1}])
    assert admin.wait("audit") == ({"n": 1},)
    marker(nodes["A"], [root])
    assert root.received("audit") == []


def test_sockets_join_and_leave_across_nodes(nodes, client):
    a = client("A", "team")
    b = client("B", "team")
    c = client("C", "other")
    A = nodes["A"]
    A.op(op="sockets_join", rooms=["team"], target="joined")
    A.op(op="emit", rooms=["joined"], event="to joined", args=[1])  # ordered after the join
    a.wait("to joined")
    b.wait("to joined")
    assert "joined" in b.call("whoami")["rooms"]
    A.op(op="sockets_leave", rooms=["team"], target="joined")
    A.op(op="emit", rooms=["joined"], event="to joined", args=[2])
    marker(A, [a, b, c])
    assert a.received("to joined") == [(1,)] and b.received("to joined") == [(1,)]
    assert c.received("to joined") == []
    assert "joined" not in b.call("whoami")["rooms"]


def test_disconnect_sockets_across_nodes(nodes, client):
    stay = client("B", "safe")
    doomed_b = client("B", "doomed")
    doomed_c = client("C", "doomed", transport="polling")
    closed_c = client("C", "closed")
    A = nodes["A"]
    A.op(op="disconnect_sockets", rooms=["doomed"])
    assert doomed_b.disconnected.wait(WAIT) and doomed_c.disconnected.wait(WAIT)
    assert doomed_b.disconnect_reason == doomed_c.disconnect_reason == "server disconnect"
    A.op(op="disconnect_sockets", rooms=["closed"], close=True)
    assert closed_c.disconnected.wait(WAIT)
    marker(A, [stay])
    assert not stay.disconnected.is_set()


def test_fetch_sockets_sees_every_node(nodes, client):
    a = client("A", "fetch", user="ann")
    b = client("B", "fetch", user="bob")
    c = client("C", "fetch", "extra", user="cid")
    found = nodes["A"].op(op="fetch_sockets", rooms=["fetch"])["sockets"]
    by_id = {s["id"]: s for s in found}
    assert set(by_id) == {a.id, b.id, c.id}
    assert by_id[a.id]["remote"] is False
    assert by_id[b.id]["remote"] is True and by_id[c.id]["remote"] is True
    assert by_id[c.id]["rooms"] == sorted([c.id, "fetch", "extra"])
    assert by_id[b.id]["data"] == {"user": "bob", "node": "B"}
    assert by_id[c.id]["auth"] == {"rooms": ["fetch", "extra"], "user": "cid"}
    everyone = {s["id"] for s in nodes["B"].op(op="fetch_sockets")["sockets"]}
    assert {a.id, b.id, c.id} <= everyone
    local = nodes["B"].op(op="fetch_sockets", rooms=["fetch"], local=True)["sockets"]
    assert [s["id"] for s in local] == [b.id]


def test_remote_socket_operations_route_by_id(nodes, client):
    c = client("C", "rs")
    A = nodes["A"]
    assert A.op(op="remote", id=c.id, action="emit", event="direct",
                args=hexes(b"\x01\x02"))["remote"] == "RemoteSocket"
    assert c.wait("direct") == (b"\x01\x02",)
    A.op(op="remote", id=c.id, action="join", target="vip")
    A.op(op="emit", rooms=["vip"], event="vip news", args=[])
    c.wait("vip news")
    assert "vip" in c.call("whoami")["rooms"]
    A.op(op="remote", id=c.id, action="leave", target="vip")
    assert "vip" not in A.op(op="fetch_sockets", rooms=[c.id])["sockets"][0]["rooms"]
    A.op(op="remote", id=c.id, action="disconnect")
    assert c.disconnected.wait(WAIT)


def test_acks_from_clients_on_every_node(nodes, client):
    clients = [client("A", "poll"), client("B", "poll"), client("B", "poll"),
               client("C", "poll", transport="polling")]
    result = nodes["B"].op(op="emit_with_ack", rooms=["poll"], event="question",
                           args=[{"hex": "ff"}], timeout=8)
    assert "error" not in result, result
    responses = result["responses"]
    assert sorted(r[1] for r in responses) == sorted(c.id for c in clients)
    for node, _sid, blob in responses:
        assert blob == {"hex": (b"\x00" + node.encode()).hex()}
    for c in clients:
        assert c.received("question") == [(b"\xff",)]
    # nobody in the room: an empty answer at once, from all nodes
    assert nodes["C"].op(op="emit_with_ack", rooms=["nobody"], event="question",
                         timeout=8) == {"responses": []}


def test_server_side_emit_reaches_the_other_nodes(nodes, client):
    b = client("B")
    c = client("C")
    tricky = {"$b": "not a tag"}
    nodes["A"].op(op="server_side_emit", event="cluster hello",
                  args=[1, {"hex": "c0ffee"}, tricky, [None, True, 2.5]])
    expected_args = (1, b"\xc0\xff\xee", tricky, [None, True, 2.5])
    assert b.wait("cluster hello received") == ("B", *expected_args)
    assert c.wait("cluster hello received") == ("C", *expected_args)
    nodes["A"].op(op="fetch_sockets")  # a round trip through A's listener
    assert nodes["A"].op(op="server_side_received") == {"received": []}  # not to itself


def test_flask_run_node_listens_in_a_thread(nodes, queue, client):
    """A node under ``flask run`` (threads, no eventlet) is a full cluster member."""
    port = free_port()
    flask = Proc([str(ROOT / ".venv" / "bin" / "flask"), "--app", "cluster_app", "run",
                  "--port", str(port), "--host", "127.0.0.1"], port=port,
                 env={"NODE": "F", "IOENGINE_MESSAGE_QUEUE": queue.url, "CLUSTER_RUN": "flask",
                      "PYTHONPATH": str(TESTS / "servers")}, name="cluster-flask")
    f_client = None
    try:
        wait_subscribed(queue.url, 4)
        node = Node("F", flask)
        f_client = Client(node, ["mixed"], transport="polling")
        assert f_client.call("listener")["aio"] == "threading"
        a = client("A", "mixed")
        nodes["A"].op(op="emit", rooms=["mixed"], event="to mixed", args=hexes(b"\x07"))
        assert f_client.wait("to mixed") == (b"\x07",)
        node.op(op="emit", rooms=["mixed"], event="from flask", args=[1])
        assert a.wait("from flask") == (1,)
        found = {s["id"]: s for s in node.op(op="fetch_sockets", rooms=["mixed"])["sockets"]}
        assert set(found) == {a.id, f_client.id} and found[a.id]["remote"] is True
        assert node.op(op="server_count") == {"count": 4}
    finally:
        if f_client is not None:
            f_client.close()
        flask.stop()
    wait_subscribed(queue.url, 3)


EMITTER_SCRIPT = """
import sys
from flask_ioengine import IOEngine
from flask_ioengine.emitter import Emitter

url = sys.argv[1]
io = IOEngine(message_queue=url, write_only=True)
io.to("emitted").emit("from emitter", 1, b"\\x00\\x01", {"k": [b"z"]})
io.of("/admin").to("emitted").emit("admin from emitter", "hi")
io.in_("emitted").sockets_join("emitter room")
io.to("emitter room").emit("joined by emitter")
io.in_("emitted").sockets_leave("emitter room")
io.to("emitter room").emit("after leave")
try:
    io.fetch_sockets()
except RuntimeError as err:
    print("fetch refused:", err)
plain = Emitter(url)
plain.to("emitted").except_("skip").emit("from plain emitter", "ok")
plain.in_("doomed by emitter").disconnect_sockets()
print("EMITTED", io.sockets.adapter.server_count())
"""


def test_write_only_emitter_from_another_process(nodes, queue, client):
    clients = [client("A", "emitted"), client("B", "emitted"), client("C", "emitted", "skip")]
    admin = client("B", "emitted", nsp="/admin")
    doomed = client("C", "doomed by emitter")
    done = subprocess.run([PYTHON, "-c", EMITTER_SCRIPT, queue.url], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "EMITTED 3" in done.stdout and "fetch refused" in done.stdout
    for c in clients:
        assert c.wait("from emitter") == (1, b"\x00\x01", {"k": [b"z"]})
        c.wait("joined by emitter")
    for c in clients[:2]:
        assert c.wait("from plain emitter") == ("ok",)  # published after "after leave"
        assert c.received("after leave") == []
    assert admin.wait("admin from emitter") == ("hi",)
    assert doomed.disconnected.wait(WAIT)
    marker(nodes["C"], [clients[2]])
    assert clients[2].received("from plain emitter") == []


class Sniffer:
    """Every message on the adapter's channels, as Redis delivers it to a subscriber."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self.pubsub.psubscribe(f"{KEY}*")
        self.messages: list[tuple[str, bytes]] = []
        while self.pubsub.get_message(timeout=WAIT)["type"] != "psubscribe":
            pass

    def collect(self, types: set[str], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while not types <= seen and time.monotonic() < deadline:
            m = self.pubsub.get_message(timeout=0.5)
            if m and m["type"] == "pmessage":
                self.messages.append((m["channel"].decode(), m["data"]))
                try:
                    seen.add(json.loads(m["data"])["type"])
                except ValueError:
                    pass
        assert types <= seen, f"missing {types - seen}"

    def close(self) -> None:
        self.pubsub.close()
        self.redis.close()


def test_wire_format_is_json_never_pickle(nodes, queue, client):
    b = client("B", "wire")
    client("C", "wire")
    sniffer = Sniffer(queue.url)
    try:
        A = nodes["A"]
        A.op(op="emit", rooms=["wire"], event="bin", args=hexes(b"\x80\x04pickle?", b""))
        b.wait("bin")
        A.op(op="sockets_join", rooms=["wire"], target="wire2")
        A.op(op="fetch_sockets", rooms=["wire"])
        A.op(op="emit_with_ack", rooms=["wire"], event="question", timeout=8)
        A.op(op="server_side_emit", event="cluster hello", args=hexes(b"\xfe"))
        A.op(op="emit", rooms=["wire"], **{"except": ["x"]}, volatile=True, event="v", args=[])
        A.op(op="disconnect_sockets", rooms=["nobody"])  # last: A's earlier ones came before
        sniffer.collect({"broadcast", "sockets_join", "fetch_sockets", "fetch_sockets_response",
                         "broadcast_with_ack", "broadcast_client_count", "broadcast_ack",
                         "server_side_emit", "disconnect_sockets"})
    finally:
        sniffer.close()
    channels = set()
    volatile = None
    for channel, data in sniffer.messages:
        assert not data.startswith(b"\x80"), data  # the pickle protocol 2+ opcode
        message = json.loads(data.decode("utf-8"))  # strict UTF-8 JSON
        assert message["v"] == 1 and isinstance(message["uid"], str)
        channels.add(channel.split("#")[0])
        if message["type"] == "broadcast" and message["packet"] == ['2["v"]']:
            volatile = message["opts"]
        if message["type"] == "broadcast" and message["packet"][0].startswith("52-"):
            text, *attachments = message["packet"]
            assert text.startswith('52-["bin",{"_placeholder":true,"num":0}')
            assert [base64.b64decode(x) for x in attachments] == [b"\x80\x04pickle?", b""]
        if message["type"] == "broadcast_ack":
            node = message["args"][0][0]
            assert message["args"][0][2] == {
                "$b": base64.b64encode(b"\x00" + node.encode()).decode()}
    assert channels == {KEY, f"{KEY}-request", f"{KEY}-response"}
    assert volatile == {"rooms": ["wire"], "except": ["x"], "volatile": True, "timeout": None}


def test_listener_killed_resubscribes_and_delivery_resumes(nodes, queue, client):
    b = client("B", "phoenix")
    c = client("C", "phoenix")
    outputs = {n: node.proc.output().count("listener resubscribed") for n, node in nodes.items()}
    killer = redis.Redis.from_url(queue.url)
    try:
        assert killer.client_kill_filter(_type="pubsub") >= 6  # 3 nodes x 2 namespaces
    finally:
        killer.close()
    deadline = time.monotonic() + 30
    for name, node in nodes.items():
        while node.proc.output().count("listener resubscribed") < outputs[name] + 2:
            assert time.monotonic() < deadline, node.proc.output()[-3000:]
            time.sleep(0.05)
        assert "listener lost" in node.proc.output()
    wait_subscribed(queue.url, 3)
    nodes["A"].op(op="emit", rooms=["phoenix"], event="after kill", args=[1])
    b.wait("after kill")
    c.wait("after kill")


def test_redis_restart_keeps_local_delivery_and_resumes(private_redis):
    mq = private_redis()
    cluster = start_nodes("XY", mq.url)
    clients: list[Client] = []
    try:
        x = Client(cluster["X"], ["r"])
        y = Client(cluster["Y"], ["r"])
        clients += [x, y]
        cluster["X"].op(op="emit", rooms=["r"], event="n", args=[0])
        y.wait("n", lambda a: a == (0,))

        mq.stop()
        # Redis is down: X's own client still gets X's emits, at once
        cluster["X"].op(op="emit", rooms=["r"], event="n", args=[1])
        x.wait("n", lambda a: a == (1,))
        cluster["Y"].op(op="emit", rooms=["r"], event="n", args=[2])
        y.wait("n", lambda a: a == (2,))
        cluster["X"].proc.wait_output("unreachable", timeout=WAIT)
        assert cluster["Y"].op(op="server_count") == {"count": 1}
        assert [s["id"] for s in cluster["Y"].op(op="fetch_sockets")["sockets"]] == [y.id]

        mq.start()  # same port
        wait_subscribed(mq.url, 2)
        cluster["X"].op(op="emit", rooms=["r"], event="n", args=[3])
        cluster["Y"].op(op="emit", rooms=["r"], event="n", args=[4])
        for c in (x, y):
            c.wait("n", lambda a: a == (3,))
            c.wait("n", lambda a: a == (4,))
        assert x.received("n").count((2,)) == 0  # dropped while down, never replayed
        for node in cluster.values():
            out = node.proc.output()
            assert "listener lost" in out and "listener resubscribed" in out
    finally:
        for c in clients:
            c.close()
        for node in cluster.values():
            node.proc.stop()
