"""Many raw Socket.IO-over-WebSocket clients in one process, on plain sockets (stdlib only).

    python soak/rawclients.py '{"url": "http://127.0.0.1:5000", "clients": 200,
                                "mode": "stall", "rcvbuf": 4096, "concurrency": 50}'

Each client opens ``/socket.io/?EIO=4&transport=websocket`` directly, waits for the
Engine.IO OPEN packet, sends the Socket.IO CONNECT ``40{"role": <role>}`` and waits for
the server's CONNECT answer. Then, by ``mode``:

- ``stall``: the socket is never read again (with a small ``SO_RCVBUF``, set before
  connecting, so the kernel cannot absorb much): a client that stopped reading;
- ``read``: everything the server sends is read and thrown away (bytes are counted);
  pings are not answered (use a long ping interval);
- ``hold``: frames are parsed and the server's pings answered; every socket has
  ``SO_LINGER {1, 0}``, so closing it sends a TCP reset (the client "vanishes").

Talks to soak/run.py line by line. Out (stdout, one JSON object per line, ``EVENT `` first):
``connected`` once all handshakes are done (or failed). In (stdin):
``reset`` (close every socket at once: with linger 0 that is a TCP RST; answers ``reset``
with the monotonic times before and after), ``drain <seconds>`` (stall mode: read every
socket, throwing the data away, until EOF or the deadline; answers how many the server
had closed: EOF, or a reset), ``stats``,
``quit``. The process ends by itself after ``limit`` seconds (default 600).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import sys
import time
from base64 import b64encode
from typing import Any
from urllib.parse import urlsplit

SOL_LINGER_RST = struct.pack("ii", 1, 0)


def out(event: str, **data: Any) -> None:
    sys.stdout.write("EVENT " + json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def ws_frame(text: str, opcode: int = 0x1) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    payload = text.encode() if isinstance(text, str) else text
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return header + mask + masked


class Conn:
    __slots__ = ("sock", "state", "buf", "sid", "received", "eof", "error")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = "http"   # http -> open -> connecting -> connected -> closed
        self.buf = bytearray()
        self.sid: str | None = None
        self.received = 0
        self.eof = False
        self.error: str | None = None

    def frames(self) -> list[tuple[int, bytes]]:
        """Whole frames at the head of ``buf`` (server frames are not masked)."""
        got = []
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
            if b1 & 0x80:
                pos += 4  # a masked server frame would be a server bug; skip the key
            if len(buf) < pos + n:
                break
            got.append((b0 & 0x0F, bytes(buf[pos:pos + n])))
            del buf[:pos + n]
        return got


class Clients:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        u = urlsplit(cfg["url"])
        self.addr = (u.hostname or "127.0.0.1", u.port or 80)
        self.mode = cfg.get("mode", "stall")
        self.role = cfg.get("role", {"stall": "stalled", "read": "reader", "hold": "abrupt"}[self.mode])
        self.sel = selectors.DefaultSelector()
        self.conns: list[Conn] = []
        self.errors: dict[str, int] = {}
        self.deadline = time.monotonic() + float(cfg.get("limit", 600))
        self.stdin_buf = b""
        self.stdin = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
        os.set_blocking(self.stdin.fileno(), False)
        self.sel.register(self.stdin.fileno(), selectors.EVENT_READ, None)
        self.draining: dict[str, Any] | None = None

    # -- connecting ----------------------------------------------------------------------

    def open_one(self, i: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.cfg.get("rcvbuf"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(self.cfg["rcvbuf"]))
        if self.mode == "hold":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, SOL_LINGER_RST)
        addrs = self.cfg.get("localAddresses") or []
        if addrs:
            sock.bind((addrs[i % len(addrs)], 0))
        sock.settimeout(10)
        try:
            sock.connect(self.addr)
            key = b64encode(os.urandom(16)).decode()
            sock.sendall((
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {self.addr[0]}:{self.addr[1]}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\n\r\n").encode())
        except OSError as err:
            sock.close()
            self._error(f"connect: {err}")
            return
        sock.setblocking(False)
        conn = Conn(sock)
        self.conns.append(conn)
        self.sel.register(sock, selectors.EVENT_READ, conn)

    def _error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def pending(self) -> int:
        return sum(1 for c in self.conns if c.state in ("http", "open", "connecting"))

    def connect_all(self) -> None:
        n = int(self.cfg.get("clients", 100))
        concurrency = int(self.cfg.get("concurrency", 50))
        t0 = time.monotonic()
        limit = t0 + float(self.cfg.get("connect_limit", 120))
        i = 0
        while time.monotonic() < limit:
            while i < n and self.pending() < concurrency:
                self.open_one(i)
                i += 1
            if i >= n and not self.pending():
                break
            self.poll(0.05)
        for c in self.conns:
            if c.state != "connected" and c.state != "closed":
                self._error(f"handshake unfinished ({c.state})")
        connected = sum(1 for c in self.conns if c.state == "connected")
        out("connected", connected=connected, clients=n, errors=self.errors,
            elapsed_s=round(time.monotonic() - t0, 3))

    # -- the loop ------------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            if key.data is None:
                self.on_stdin()
            else:
                self.on_readable(key.data)

    def on_readable(self, c: Conn) -> None:
        try:
            data = c.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self.lost(c, f"recv: {err.strerror or err}")
            return
        if not data:
            c.eof = True
            self.lost(c, None)
            return
        c.received += len(data)
        if c.state == "connected" and (self.mode == "read" or self.draining is not None):
            return  # read mode, or draining: count and throw away (EOF says closed)
        c.buf += data
        if c.state == "http":
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(c.buf[:end])
            del c.buf[:end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                status = head.split(b"\r\n")[0].decode(errors="replace")
                self.lost(c, f"upgrade refused: {status}")
                return
            c.state = "open"
        for opcode, payload in c.frames():
            self.on_frame(c, opcode, payload)

    def on_frame(self, c: Conn, opcode: int, payload: bytes) -> None:
        if opcode == 0x8:
            self.lost(c, None)
            return
        if opcode == 0x9:
            self.send(c, ws_frame(payload, 0xA))
            return
        if opcode != 0x1:
            return
        if payload == b"2":
            self.send(c, ws_frame("3"))
        elif c.state == "open" and payload.startswith(b"0"):
            c.state = "connecting"
            self.send(c, ws_frame("40" + json.dumps({"role": self.role})))
        elif c.state == "connecting" and payload.startswith(b"40"):
            c.sid = json.loads(payload[2:] or b"{}").get("sid")
            c.state = "connected"
            if self.mode == "stall":
                self.sel.unregister(c.sock)  # never read again (until "drain")
        elif c.state == "connecting" and payload.startswith(b"44"):
            self.lost(c, "connect_error")

    def send(self, c: Conn, data: bytes) -> None:
        try:
            c.sock.send(data)  # tiny frames: the kernel takes them whole
        except OSError as err:
            self.lost(c, f"send: {err.strerror or err}")

    def lost(self, c: Conn, error: str | None) -> None:
        if c.state == "closed":
            return
        if c.state != "connected":
            self._error(error or "closed during the handshake")
        c.error = error
        c.state = "closed"
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    # -- commands ------------------------------------------------------------------------

    def on_stdin(self) -> None:
        try:
            chunk = os.read(self.stdin.fileno(), 4096)
        except BlockingIOError:
            return
        if not chunk:
            self.quit = True
            return
        self.stdin_buf += chunk
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            self.command(line.decode().split())

    def command(self, words: list[str]) -> None:
        if not words:
            return
        cmd = words[0]
        if cmd == "reset":
            t0 = time.monotonic()
            for c in self.conns:
                if c.state != "closed":
                    c.state = "closed"
                    try:
                        self.sel.unregister(c.sock)
                    except (KeyError, ValueError):
                        pass
                    c.sock.close()  # SO_LINGER {1, 0}: a TCP reset, no FIN
            out("reset", t0=t0, t1=time.monotonic(), closed=len(self.conns))
        elif cmd == "drain":
            seconds = float(words[1]) if len(words) > 1 else 5.0
            live = [c for c in self.conns if c.state == "connected"]
            for c in live:
                self.sel.register(c.sock, selectors.EVENT_READ, c)
            self.draining = {"until": time.monotonic() + seconds, "conns": live}
        elif cmd == "stats":
            self.report("stats")
        elif cmd == "quit":
            self.quit = True

    def report(self, event: str) -> None:
        states: dict[str, int] = {}
        for c in self.conns:
            states[c.state] = states.get(c.state, 0) + 1
        out(event, states=states, bytes=sum(c.received for c in self.conns),
            errors=self.errors)

    def finish_drain(self) -> None:
        assert self.draining is not None
        conns = self.draining["conns"]
        self.draining = None
        closed_by_server = sum(1 for c in conns if c.state == "closed" and c.error is None)
        reset = sum(1 for c in conns if c.state == "closed" and c.error is not None)
        still_open = sum(1 for c in conns if c.state != "closed")
        out("drained", clients=len(conns), closed_by_server=closed_by_server, reset=reset,
            still_open=still_open, bytes=sum(c.received for c in conns))

    def run(self) -> None:
        self.quit = False
        self.connect_all()
        while not self.quit and time.monotonic() < self.deadline:
            self.poll(0.2)
            if self.draining is not None:
                d = self.draining
                if time.monotonic() >= d["until"] or all(c.state == "closed" for c in d["conns"]):
                    self.finish_drain()
        for c in self.conns:
            if c.state != "closed":
                c.sock.close()


def main() -> None:
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Clients(cfg).run()


if __name__ == "__main__":
    main()
