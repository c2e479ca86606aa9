"""Integration tests of the Socket.IO v5 server with the official socket.io-client (Node).

The scenarios live in ``tests/js/sio_scenarios.js``; they run against
``tests/servers/sio_app.py`` once per transport (websocket-only, polling-only), each with
its own sockets and rooms, and every test below asserts the part of the report that
concerns it, plus what the server printed (``DISCONNECT <nsp> <sid> <reason>``).
Abrupt deaths and ping timeouts use ``tests/js/sio_hold.js``, a client process the test
kills or freezes (SIGSTOP) so that it cannot answer pings.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpers import PYTHON, TESTS, Proc, free_port, run_node

MODES = ["websocket", "polling"]


def start_app(name: str, ping_interval: str = "25", ping_timeout: str = "20") -> Proc:
    port = free_port()
    return Proc([PYTHON, str(TESTS / "servers" / "sio_app.py"), str(port)], port=port, name=name,
                env={"PING_INTERVAL": ping_interval, "PING_TIMEOUT": ping_timeout})


@pytest.fixture(scope="module")
def server() -> Iterator[Proc]:
    proc = start_app("sio-node")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def fast_server() -> Iterator[Proc]:
    """Heartbeat of 0.3 s + 0.3 s: a silent client is dropped after about 0.6 s."""
    proc = start_app("sio-node-fast", "0.3", "0.3")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def scenario(server: Proc) -> Callable[[str, str], dict[str, Any]]:
    """``scenario(mode, name)``: one scenario's report; all of a mode's scenarios run in
    one Node process, the first time that mode is asked for."""
    reports: dict[str, Any] = {}

    def get(mode: str, name: str) -> dict[str, Any]:
        if mode not in reports:
            try:
                reports[mode] = run_node("sio_scenarios.js", json.dumps(
                    {"port": server.port, "transport": mode}), timeout=110)
            except Exception as exc:  # reported by every test of the mode, run only once
                reports[mode] = exc
        report = reports[mode]
        if isinstance(report, Exception):
            raise report
        assert report["transport"] == mode
        result = report["results"][name]
        assert "error" not in result, result["error"]
        return result

    return get


def buf(hex_: str) -> dict[str, str]:
    """How the scenarios report a Node Buffer."""
    return {"buffer": hex_}


def server_logged(server: Proc, nsp: str, sid: str, reason: str) -> None:
    out = server.wait_output(f"DISCONNECT {nsp} {sid} ", timeout=10)
    lines = [line for line in out.splitlines() if line.startswith(f"DISCONNECT {nsp} {sid} ")]
    assert lines == [f"DISCONNECT {nsp} {sid} {reason}"], lines


# -- connecting -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_connect_id_auth_and_handshake(scenario, mode):
    r = scenario(mode, "connect")
    assert r["transport"] == mode
    assert len(r["clientId"]) == 20
    assert r["clientId"] == r["contextId"] == r["handshake"]["id"]
    assert r["handshake"]["auth"] == r["sentAuth"]
    assert r["handshake"]["auth"]["user"] == "zoë"
    assert r["handshake"]["query"]["q"] == "hello"
    assert r["handshake"]["query"]["EIO"] == "4"
    assert r["handshake"]["query"]["transport"] == mode
    assert r["handshake"]["url"].startswith(f"/socket.io/?q=hello&EIO=4&transport={mode}")
    assert r["handshake"]["address"] == "127.0.0.1"


@pytest.mark.parametrize("mode", MODES)
def test_auth_rooms_joined_in_connection_handler(scenario, mode):
    r = scenario(mode, "authRooms")
    assert r["rooms"] == sorted([r["id"], "extra", "from-auth-1", "from-auth-2"])


@pytest.mark.parametrize("mode", MODES)
def test_admin_namespace(scenario, mode):
    r = scenario(mode, "admin")
    assert r["nsp"] == "/admin"
    assert r["whoami"] == {"nsp": "/admin", "auth": {"user": "admin-user", "level": 3}}


@pytest.mark.parametrize("mode", MODES)
def test_dynamic_namespace(scenario, mode):
    r = scenario(mode, "dynamic")
    assert r["welcome"] == "/dyn-123"
    assert r["connected"] is True
    # the rule is /dyn-\d+: "/dyn-abc" is no namespace
    assert r["nonMatching"] == {"message": "Invalid namespace", "data": "<undefined>",
                                "connected": False, "isError": True}


@pytest.mark.parametrize("mode", MODES)
def test_unknown_namespace_is_refused(scenario, mode):
    r = scenario(mode, "unknownNamespace")
    assert r == {"message": "Invalid namespace", "data": "<undefined>", "connected": False,
                 "isError": True}


# -- events and acknowledgements ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_echo_returns_every_argument(scenario, mode):
    r = scenario(mode, "echo")
    assert r["echoed"] == r["sent"]
    assert r["echoed"][0] == "héllo wörld €😀"
    assert r["echoed"][5] == {"a": {"b": [1, {"c": "ü"}]}, "e": []}
    assert r["emptyEcho"] == "<undefined>"  # an empty tuple acks with no argument


@pytest.mark.parametrize("mode", MODES)
def test_handler_without_parameters_tolerates_arguments(scenario, mode):
    r = scenario(mode, "echo")
    assert r["noArgs"] == ["fine"]
    assert r["noArgsBare"] == ["fine"]


@pytest.mark.parametrize("mode", MODES)
def test_server_asks_client_and_gets_its_ack(scenario, mode):
    r = scenario(mode, "askClient")
    assert r["questions"][0] == [21, "more"]
    # the client acked with two values: emit_with_ack returns a tuple, sent back as 2 args
    assert r["answer"] == [{"answer": 42}, "second"]


@pytest.mark.parametrize("mode", MODES)
def test_client_ack_with_binary_reaches_server(scenario, mode):
    r = scenario(mode, "askClient")
    assert r["questions"][1] == ["binary"]
    assert r["binaryAnswer"] == [buf("cafe"), {"inner": buf("696e")}]


@pytest.mark.parametrize("mode", MODES)
def test_server_ack_timeout(scenario, mode):
    r = scenario(mode, "askClient")
    assert r["timeout"] == ["timeout: operation has timed out"]
    assert r["noAnswerCalls"] == [1]  # the event reached the client (with its ack callback)
    assert r["timeoutMs"] >= 150  # the server waited (0.2 s) before giving up


# -- binary ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_binary_both_ways(scenario, mode):
    r = scenario(mode, "binary")
    assert r["reply"] == {
        "got": {"buf": buf("01020300ff"),
                "list": [buf("78797a"), {"deep": buf("00")}, "text"]},
        "len": 5,
        "extra": [buf("00ff"), {"nested": buf("6f6b")}],
    }
    assert r["echoed"] == [[buf("0908"), {"b": buf("")}], "plain"]


@pytest.mark.parametrize("mode", MODES)
def test_binary_event_from_server(scenario, mode):
    r = scenario(mode, "binary")
    assert r["sent"] == "sent"
    assert r["event"] == [[
        {"bytes": buf("0102fe"), "list": [buf("78"), {"deep": buf("")}]}, buf("07"), "tail",
    ]]


# -- rooms ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_join_and_leave_return_rooms(scenario, mode):
    r = scenario(mode, "joinLeave")
    me = r["id"]
    assert r["afterJoin"] == sorted([me, "room-a"])
    assert r["afterJoin2"] == sorted([me, "room-a", "room-b"])
    assert r["afterLeave"] == sorted([me, "room-b"])
    assert r["leaveUnknown"] == sorted([me, "room-b"])


@pytest.mark.parametrize("mode", MODES)
def test_to_room_reaches_members_only(scenario, mode):
    r = scenario(mode, "toRoom")
    # one text broadcast, one with binary attachments (encoded once for the room)
    expected = [["hi", {"n": 1}], [buf("0102"), {"b": [buf("7a")]}]]
    assert r["a"] == expected
    assert r["b"] == expected
    assert r["c"] == []  # the sender, not a member


@pytest.mark.parametrize("mode", MODES)
def test_to_room_except_excludes_a_room(scenario, mode):
    r = scenario(mode, "toRoomExcept")
    assert r["a"] == [["payload"]]  # the sender is a member: io.to() includes it
    assert r["c"] == [["payload"]]
    assert r["b"] == []  # member, but in the excluded room
    assert r["d"] == []  # only in the excluded room


@pytest.mark.parametrize("mode", MODES)
def test_broadcast_reaches_everyone_but_the_sender(scenario, mode):
    r = scenario(mode, "toOthers")
    assert r["b"] == [["from a", [1, 2]]]
    assert r["c"] == [["from a", [1, 2]]]
    assert r["a"] == []
    assert r["ackArgs"] == []


@pytest.mark.parametrize("mode", MODES)
def test_emit_from_flask_view_reaches_room(scenario, mode):
    r = scenario(mode, "viewEmit")
    assert r["status"] == 204
    payload = {"hello": "from flask", "n": [1, 2]}
    assert r["a"] == [[payload]]
    assert r["b"] == [[payload]]
    assert r["c"] == []


@pytest.mark.parametrize("mode", MODES)
def test_fetch_sockets_of_a_room(scenario, mode):
    r = scenario(mode, "fetchSockets")
    assert r["ids"] == r["expected"]
    assert len(r["ids"]) == 2
    assert r["none"] == []
    assert r["own"] == [r["c"]]


@pytest.mark.parametrize("mode", MODES)
def test_sockets_join_moves_a_room_into_another(scenario, mode):
    r = scenario(mode, "roomJoinAll")
    assert r["moved"] == r["expected"]
    assert r["fetched"] == r["expected"]
    assert r["roomsOfA"] == sorted([r["a"], "rja-src", "rja-dst", "rja-other"])
    assert r["got"] == [[["after move"]], [["after move"]], []]


@pytest.mark.parametrize("mode", MODES)
def test_disconnect_sockets_of_a_room(scenario, server, mode):
    r = scenario(mode, "disconnectRoom")
    assert r["reasonA"] == "io server disconnect"
    assert r["reasonB"] == "io server disconnect"
    assert r["aConnected"] is False and r["bConnected"] is False
    assert r["ackArgs"] == []
    assert r["cConnected"] is True
    assert r["stillThere"] == "still here"
    server_logged(server, "/", r["ids"]["a"], "server namespace disconnect")
    server_logged(server, "/", r["ids"]["b"], "server namespace disconnect")


@pytest.mark.parametrize("mode", MODES)
def test_broadcast_with_acks_collects_every_answer(scenario, mode):
    r = scenario(mode, "askRoom")
    assert r["answers"] == ["yes-ann", "yes-bob", "yes-cid"]
    assert r["empty"] == []
    assert r["outsiderPolled"] == 0


# -- middlewares ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_connection_middleware_refuses_with_data(scenario, mode):
    r = scenario(mode, "badToken")
    assert r == {"message": "not authorized", "data": {"reason": "bad token"},
                 "connected": False, "isError": True}


@pytest.mark.parametrize("mode", MODES)
def test_connection_middleware_raising_refuses(scenario, mode):
    r = scenario(mode, "raiseToken")
    # an unexpected exception's text stays in the server log, not on the wire
    assert r["message"] == "Connection refused"
    assert r["data"] == "<undefined>"
    assert r["connected"] is False
    assert "Traceback" not in json.dumps(r)
    assert "ValueError" not in json.dumps(r)


@pytest.mark.parametrize("mode", MODES)
def test_packet_middleware_drops_event(scenario, mode):
    r = scenario(mode, "forbidden")
    assert r["errors"] == [["forbidden event"]]
    assert r["acked"] == 0
    assert r["echoed"] == ["allowed"]  # the socket keeps working


# -- disconnections -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_client_disconnect(scenario, server, mode):
    r = scenario(mode, "clientDisconnect")
    assert r["reason"] == "io client disconnect"
    server_logged(server, "/", r["id"], "client namespace disconnect")


@pytest.mark.parametrize("mode", MODES)
def test_server_disconnects_socket(scenario, server, mode):
    r = scenario(mode, "disconnectMe")
    assert r["reason"] == "io server disconnect"
    assert r["connected"] is False
    # without close, only the namespace is left: the connection and /admin stay
    assert r["adminConnected"] is True
    assert r["adminWhoami"] == {"nsp": "/admin", "auth": {"user": "same-manager"}}
    assert r["engineState"] == "open"
    server_logged(server, "/", r["id"], "server namespace disconnect")


@pytest.mark.parametrize("mode", MODES)
def test_server_disconnect_with_close_ends_every_namespace(scenario, server, mode):
    r = scenario(mode, "disconnectMeClose")
    assert r["connected"] is False
    assert r["adminConnected"] is False  # the whole connection went
    server_logged(server, "/", r["ids"]["root"], "server namespace disconnect")


@pytest.mark.parametrize("mode", [
    "websocket",
    "polling",
])
def test_server_disconnect_with_close_reason(scenario, mode):
    r = scenario(mode, "disconnectMeClose")
    # a kick must read as one, so that socket.io-client does not reconnect
    assert r["reason"] == "io server disconnect"
    assert r["adminReason"] == "io server disconnect"


@pytest.mark.parametrize("mode", MODES)
def test_closing_the_connection_makes_client_reconnect(scenario, server, mode):
    r = scenario(mode, "closeConn")
    assert r["reason"] == "transport close"
    assert r["attempt"] >= 1
    assert r["connected"] is True
    assert r["secondId"] != r["firstId"]
    assert r["secondId"] == r["serverId"]
    server_logged(server, "/", r["firstId"], "forced close")


@pytest.mark.parametrize("mode", MODES)
def test_client_engine_close(scenario, server, mode):
    r = scenario(mode, "engineClose")
    assert r["reason"] == "forced close"  # socket.io-client's name for its own close
    server_logged(server, "/", r["id"], "transport close")


def hold(server: Proc, mode: str) -> tuple[Proc, str]:
    """A client process connected to ``server``; returns it and its socket id."""
    client = Proc(["node", str(TESTS / "js" / "sio_hold.js"),
                   json.dumps({"port": server.port, "transport": mode})],
                  name=f"sio-hold-{mode}")
    try:
        out = client.wait_output("CONNECTED ", timeout=15)
    except TimeoutError:
        client.stop(signal.SIGKILL)
        raise
    sid = out.split("CONNECTED ", 1)[1].split()[0]
    return client, sid


def test_killed_websocket_client_is_a_transport_close(server):
    client, sid = hold(server, "websocket")
    client.stop(signal.SIGKILL)
    server_logged(server, "/", sid, "transport close")


def test_killed_polling_client_is_a_ping_timeout(fast_server):
    # a dropped long-poll cannot be seen by the server: the heartbeat notices it
    client, sid = hold(fast_server, "polling")
    client.stop(signal.SIGKILL)
    server_logged(fast_server, "/", sid, "ping timeout")


@pytest.mark.parametrize("mode", MODES)
def test_ping_timeout(fast_server, mode):
    client, sid = hold(fast_server, mode)
    try:
        client.proc.send_signal(signal.SIGSTOP)  # alive, connected, but deaf to pings
        server_logged(fast_server, "/", sid, "ping timeout")
    finally:
        client.stop(signal.SIGKILL)


# -- Flask context, volatile ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_flask_context_in_handlers(scenario, mode):
    r = scenario(mode, "context")
    for ctx, sid, q in ((r["first"], r["id"], "x"), (r["second"], r["id"], "x"),
                        (r["third"], r["otherId"], "other")):
        assert ctx == {"path": "/socket.io/", "query": q, "app": "sio_app", "g": 1, "id": sid}


@pytest.mark.parametrize("mode", MODES)
def test_flask_session_lives_as_long_as_the_connection(scenario, mode):
    r = scenario(mode, "context")
    assert r["seen"] == 2  # two "context" calls on this connection
    assert r["otherSeen"] == 1  # another connection has its own session


@pytest.mark.parametrize("mode", MODES)
def test_volatile_emits(scenario, mode):
    r = scenario(mode, "volatile")
    assert r["n"] == 50
    got = r["got"]
    assert len(got) <= 50
    assert got == sorted(set(got))
    assert all(isinstance(i, int) and 0 <= i < 50 for i in got)
    assert r["echoed"] == ["after volatile"]
    assert r["connected"] is True
    assert r["errors"] == []
