"""The Engine.IO server: handshake, sid routing, options, hooks, middlewares and errors.

``Server.wsgi`` answers every request under ``path``; each answer is a ``Response``
or, for a WebSocket, the connection itself (the request's thread then becomes the
reader). Refused requests get the protocol's error JSON and emit ``connection_error``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import socket as _socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_content_length, get_input_stream

from ..concurrency import Backend, backend_for_environ, get_backend
from . import cookie as cookie_mod
from . import packet
from .cors import CorsPolicy
from .heartbeat import MAX_TICK, Wheel
from .polling import TransportError, deliver, poll
from .socket import OPEN, Socket
from .websocket import (
    HubReader,
    WebSocket,
    WebSocketClosed,
    accept_key,
    attach,
    raw_socket,
    read_loop,
    valid_upgrade,
)
from .wsframe import negotiate_deflate

log = logging.getLogger("flask_ioengine.engineio")

UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_PROTOCOL_VERSION = range(6)
MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

Middleware = Callable[[Any, Callable[..., Any]], Any]


class Response:
    """A complete HTTP answer."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


#: Set (True) in the environ of a handshake made in-process by a test client; the server
#: replaces it with the new session, whose outbox the test client drains itself.
IN_PROCESS_KEY = "ioengine.in_process"

#: Where the environ keeps its request object (``request_class``), once one is needed.
REQUEST_KEY = "ioengine.request"

#: Returned instead of a Response when the request became a WebSocket.
HIJACKED = Response(101, [], b"")
#: environ key of a callable that makes the WSGI server let go of the connection for good
#: once the application returns (``flask_ioengine.http.FastHttpProtocol`` offers it)
DETACH_KEY = "flask_ioengine.detach"

_REASONS = {
    101: "Switching Protocols", 200: "OK", 204: "No Content", 400: "Bad Request",
    403: "Forbidden", 413: "Payload Too Large", 500: "Internal Server Error",
}


def parse_query(query: str) -> dict[str, list[str]]:
    """``parse_qs(query, keep_blank_values=True)``, without its cost for the plain
    queries clients send (no ``%`` escapes, no ``+``)."""
    if "%" in query or "+" in query:
        return parse_qs(query, keep_blank_values=True)
    fields: dict[str, list[str]] = {}
    for field in query.split("&"):
        if field:
            name, _, value = field.partition("=")
            values = fields.get(name)
            if values is None:
                fields[name] = [value]
            else:
                values.append(value)
    return fields


class EngineError(Exception):
    """A refused request, carrying what the wire needs."""

    def __init__(self, code: int, message: str | None = None, status: int | None = None,
                 context: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message or MESSAGES[code]
        self.status = status or (403 if code == FORBIDDEN else 400)
        self.context = context or {}
        super().__init__(self.message)


class HookError(Exception):
    """A header hook failed or produced an invalid header (a server-side bug)."""


class Server:
    """An Engine.IO v4 server; mount it with ``wsgi`` under ``path``."""

    path: str
    ping_interval: float
    ping_timeout: float
    upgrade_timeout: float
    max_http_buffer_size: int
    max_write_buffer: int
    per_message_deflate: int | None
    transports: tuple[str, ...]
    allow_upgrades: bool
    cookie: dict[str, Any] | None
    cors: CorsPolicy
    allow_request: Callable[[Any], bool | str | None] | None
    request_class: type

    def __init__(
        self,
        *,
        path: str = "/socket.io/",
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        upgrade_timeout: float = 10.0,
        max_http_buffer_size: int = 1_000_000,
        max_write_buffer: int = 1_000_000,
        per_message_deflate: bool | int | dict[str, Any] | None = False,
        transports: Iterable[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        cookie: bool | dict[str, Any] | None = None,
        cors: bool | dict[str, Any] | None = None,
        allow_request: Callable[[Any], bool | str | None] | None = None,
        request_class: type = Request,
    ) -> None:
        self.sockets: dict[str, Socket] = {}
        self.configure(
            path=path, ping_interval=ping_interval, ping_timeout=ping_timeout,
            upgrade_timeout=upgrade_timeout, max_http_buffer_size=max_http_buffer_size,
            max_write_buffer=max_write_buffer, per_message_deflate=per_message_deflate,
            transports=transports, allow_upgrades=allow_upgrades, cookie=cookie, cors=cors,
            allow_request=allow_request, request_class=request_class,
        )
        self.middlewares: list[Middleware] = []
        #: Turn objects given to ``use()`` into middlewares (the Flask session adapter).
        self.middleware_adapters: list[Callable[[Any], Middleware | None]] = []
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._aio: Backend | None = None
        self._wheel: Wheel | None = None

    # -- configuration -----------------------------------------------------------------

    OPTIONS = (
        "path", "ping_interval", "ping_timeout", "upgrade_timeout", "max_http_buffer_size",
        "transports", "allow_upgrades", "cookie", "cors", "allow_request", "request_class",
        "max_write_buffer", "per_message_deflate",
    )

    def configure(self, **options: Any) -> None:
        """Set options after construction (the Flask extension applies app.config)."""
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise TypeError(f"unknown Engine.IO option(s): {', '.join(sorted(unknown))}")
        if "path" in options:
            self.path = "/" + str(options["path"]).strip("/") + "/"
        for name in ("ping_interval", "ping_timeout", "upgrade_timeout"):
            if name in options:
                setattr(self, name, float(options[name]))
                self._wheel = None  # its tick follows the heartbeat
        if "max_http_buffer_size" in options:
            self.max_http_buffer_size = int(options["max_http_buffer_size"])
        if "max_write_buffer" in options:
            self.max_write_buffer = int(options["max_write_buffer"])
        if "per_message_deflate" in options:
            # False/None: off (Node's default); True: compress messages >= 1024 bytes;
            # {"threshold": n} or n: from n bytes.
            pmd = options["per_message_deflate"]
            if isinstance(pmd, dict):
                pmd = int(pmd.get("threshold", 1024))
            self.per_message_deflate = (
                None if pmd is None or pmd is False else 1024 if pmd is True else int(pmd))
        if "transports" in options:
            transports = options["transports"]
            self.transports = (transports,) if isinstance(transports, str) else tuple(transports)
            for t in self.transports:
                if t not in ("polling", "websocket"):
                    raise ValueError(f"unknown transport {t!r}")
        if "allow_upgrades" in options:
            self.allow_upgrades = bool(options["allow_upgrades"])
        if "cookie" in options:
            self.cookie = cookie_mod.normalize(options["cookie"])
        if "cors" in options:
            self.cors = CorsPolicy(options["cors"])
        if "allow_request" in options:
            self.allow_request = options["allow_request"]
        if "request_class" in options:
            self.request_class = options["request_class"]

    @property
    def aio(self) -> Backend:
        if self._aio is None:
            from ..concurrency import eventlet_patched

            self._aio = get_backend("eventlet" if eventlet_patched() else "threading")
        return self._aio

    @aio.setter
    def aio(self, backend: Backend) -> None:
        self._aio = backend
        self._wheel = None

    @property
    def heartbeats(self) -> Wheel:
        """The timer wheel of the sessions' heartbeats (made with the first session)."""
        wheel = self._wheel
        if wheel is None or wheel.aio is not self.aio:
            tick = min(MAX_TICK, self.ping_interval / 8, self.ping_timeout / 8)
            wheel = self._wheel = Wheel(self.aio, tick)
        return wheel

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Register ``handler`` for ``event`` (``connection``, ``connection_error``,
        ``initial_headers``, ``headers``, ``close``); usable as a decorator."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def emit(self, event: str, *args: Any) -> None:
        handlers = self._handlers.get(event)
        if handlers:
            # handlers are application code: never run in eventlet's hub (see run_now)
            self.aio.run_now(self._call_handlers, event, handlers, args)

    @staticmethod
    def _call_handlers(event: str, handlers: list[Callable[..., Any]],
                       args: tuple[Any, ...]) -> None:
        for fn in handlers:
            try:
                fn(*args)
            except Exception:
                log.exception("engine.io %r handler failed", event)

    def use(self, middleware: Any) -> None:
        """Add a middleware run for every Engine.IO HTTP request: a callable
        ``(request, next)`` that calls ``next()`` to go on (``next(err)`` refuses), or
        an object an adapter knows (a Flask ``SessionInterface``)."""
        for adapt in self.middleware_adapters:
            adapted = adapt(middleware)
            if adapted is not None:
                self.middlewares.append(adapted)
                return
        if not callable(middleware):
            raise TypeError(f"cannot use {middleware!r} as an engine middleware")
        self.middlewares.append(middleware)

    # -- WSGI ----------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._aio is None:
            self._aio = backend_for_environ(environ)
        response = self.handle(environ)
        if response is HIJACKED:
            if "eventlet.input" in environ:
                from eventlet.wsgi import WSGI_LOCAL

                WSGI_LOCAL.already_handled = True
                return []
            if "werkzeug.socket" in environ:
                # werkzeug's server treats this as a dropped connection: no response.
                raise ConnectionAbortedError("websocket closed")
            return []
        reason = _REASONS.get(response.status, "")
        start_response(f"{response.status} {reason}", response.headers)
        return [response.body]

    def handle(self, environ: dict[str, Any]) -> Response:
        """Answer one request under ``path``."""
        origin = environ.get("HTTP_ORIGIN")
        try:
            if not self.cors.allows(origin, environ.get("HTTP_HOST"),
                                    environ.get("wsgi.url_scheme", "http")):
                log.info("engine.io: origin %r refused", origin)
                raise EngineError(FORBIDDEN, "Origin not allowed", context={"origin": origin})
            cors = self.cors.headers(origin)
            if environ.get("REQUEST_METHOD") == "OPTIONS" and self.cors.enabled:
                headers = self.cors.headers(
                    origin, preflight=True,
                    request_headers=environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"))
                return Response(204, headers + [("Content-Length", "0")], b"")
            if self.middlewares:
                return self._apply_middlewares(self._request(environ), 0, cors)
            return self._verified(environ, cors)
        except EngineError as err:
            return self._refuse(self._request(environ), err, self.cors.headers(origin))
        except HookError as err:
            log.error("engine.io: %s", err)
            body = json.dumps({"code": BAD_REQUEST, "message": "Internal server error"})
            return Response(500, [("Content-Type", "application/json")], body.encode())

    def _request(self, environ: dict[str, Any]) -> Any:
        """The ``request_class`` object of ``environ``, built once, when first needed.

        A poll with no middleware or header hook never needs one, and then none is
        built: a request object and its environ refer to each other, so each would
        leave a reference cycle for the garbage collector.
        """
        request = environ.get(REQUEST_KEY)
        if request is None:
            request = environ[REQUEST_KEY] = self.request_class(environ)
        return request

    def _refuse(self, request: Any, err: EngineError, cors: list[tuple[str, str]]) -> Response:
        environ = request.environ
        log.info("engine.io: refused %s %s?%s: %d %s %s", environ.get("REQUEST_METHOD"),
                 environ.get("PATH_INFO", "")[:64], environ.get("QUERY_STRING", "")[:128],
                 err.status, err.message, repr(err.context)[:128])
        self.emit("connection_error", {
            "req": request, "code": err.code, "message": err.message, "context": err.context,
        })
        body = json.dumps({"code": err.code, "message": err.message}).encode()
        headers = [("Content-Type", "application/json")] + cors
        return Response(err.status, headers, body)

    def _apply_middlewares(self, request: Any, i: int, cors: list[tuple[str, str]]) -> Response:
        if i == len(self.middlewares):
            return self._verified(request.environ, cors)
        result: list[Response] = []

        def next(err: Any = None) -> Response:
            if err is not None:
                raise EngineError(BAD_REQUEST, context={"name": "MIDDLEWARE_FAILURE",
                                                        "error": str(err)})
            response = self._apply_middlewares(request, i + 1, cors)
            result.append(response)
            return response

        try:
            self.middlewares[i](request, next)
        except (EngineError, HookError):
            raise
        except Exception as exc:
            log.warning("engine.io middleware failed: %r", exc)
            raise EngineError(BAD_REQUEST, context={"name": "MIDDLEWARE_FAILURE"}) from None
        if not result:
            raise EngineError(BAD_REQUEST, context={"name": "MIDDLEWARE_FAILURE"})
        return result[0]

    # -- routing -------------------------------------------------------------------------

    def _verified(self, environ: dict[str, Any], cors: list[tuple[str, str]]) -> Response:
        query = parse_query(environ.get("QUERY_STRING", ""))
        for name, code in (("EIO", UNSUPPORTED_PROTOCOL_VERSION), ("transport", UNKNOWN_TRANSPORT),
                           ("sid", UNKNOWN_SID)):
            if len(query.get(name, ())) > 1:  # ambiguous: refuse, as Node does
                raise EngineError(code, context={"duplicate": name})
        if query.get("EIO", [None])[-1] != "4":
            raise EngineError(UNSUPPORTED_PROTOCOL_VERSION,
                              context={"protocol": query.get("EIO", [None])[-1]})
        transport = query.get("transport", [None])[-1]
        if transport not in self.transports:
            raise EngineError(UNKNOWN_TRANSPORT, context={"transport": transport})
        method = environ.get("REQUEST_METHOD")
        sid = query.get("sid", [None])[-1]
        if sid is None:
            if method != "GET":
                raise EngineError(BAD_HANDSHAKE_METHOD, context={"method": method})
            return self._handshake(self._request(environ), transport, cors)
        socket = self.sockets.get(sid)
        if socket is None:
            raise EngineError(UNKNOWN_SID, context={"sid": sid})
        if transport == "websocket":
            key = valid_upgrade(environ)
            if (key is None or socket.transport != "polling" or socket.upgrading
                    or not self.allow_upgrades or socket.state != OPEN):
                raise EngineError(BAD_REQUEST, context={"name": "TRANSPORT_MISMATCH"})
            request = self._request(environ)
            return self._websocket(request, key, socket, self._headers(request, cors, None))
        if socket.transport != "polling":
            raise EngineError(BAD_REQUEST, context={"name": "TRANSPORT_MISMATCH"})
        try:
            if method == "GET":
                headers = self._poll_headers(environ, cors)  # before taking packets
                payload = poll(self, socket)
                return self._text(payload, headers)
            if method == "POST":
                headers = self._poll_headers(environ, cors)
                body = self._read_body(environ, socket)
                deliver(socket, body)
                return self._text("ok", headers, "text/html")
        except TransportError as err:
            raise EngineError(err.code, err.message, status=err.status) from None
        raise EngineError(BAD_HANDSHAKE_METHOD, context={"method": method})

    def _read_body(self, environ: dict[str, Any], socket: Socket) -> bytes:
        limit = self.max_http_buffer_size
        length = get_content_length(environ)  # what a werkzeug request would say
        if length is not None and length > limit:
            socket.closed("transport error")
            raise EngineError(BAD_REQUEST, "Payload too large", status=413)
        if length is None and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            stream = environ["wsgi.input"]  # the server de-chunks it; werkzeug would not
        else:
            stream = get_input_stream(environ)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = stream.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                socket.closed("transport error")
                raise EngineError(BAD_REQUEST, "Payload too large", status=413)
        return b"".join(chunks)

    # -- responses -----------------------------------------------------------------------

    def _poll_headers(self, environ: dict[str, Any],
                      cors: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """:meth:`_headers` for a poll: with no ``headers`` hook there is nothing to run
        (and no request object to build), only the CORS headers to check."""
        if self._handlers.get("headers"):
            return self._headers(self._request(environ), cors, None)
        for name, value in cors:
            if "\r" in value or "\n" in value:
                raise HookError(f"invalid header {name[:40]!r} from a headers hook")
        return cors

    def _headers(self, request: Any, cors: list[tuple[str, str]],
                 sid: str | None) -> list[tuple[str, str]]:
        """CORS headers, then (on a handshake) the cookie and ``initial_headers``, then
        ``headers``: what hooks add is validated so it cannot split the response."""
        headers = Headers(cors)
        if sid is not None:
            if self.cookie is not None:
                headers.add("Set-Cookie", cookie_mod.serialize(self.cookie, sid))
            try:
                for fn in self._handlers.get("initial_headers", ()):
                    fn(headers, request)
            except Exception as exc:
                raise HookError(f"an initial_headers hook failed: {exc!r}") from exc
        try:
            for fn in self._handlers.get("headers", ()):
                fn(headers, request)
        except Exception as exc:
            raise HookError(f"a headers hook failed: {exc!r}") from exc
        out = []
        for name, value in headers.items():
            if not _TOKEN.match(name) or "\r" in value or "\n" in value:
                raise HookError(f"invalid header {name[:40]!r} from a headers hook")
            out.append((name, value))
        return out

    @staticmethod
    def _text(body: str, headers: list[tuple[str, str]],
              content_type: str = "text/plain; charset=UTF-8") -> Response:
        base = [("Content-Type", content_type), ("Cache-Control", "no-store")]
        return Response(200, base + headers, body.encode("utf-8"))

    # -- sessions ------------------------------------------------------------------------

    def _open_packet(self, upgrades: list[str], sid: str) -> str:
        return "0" + json.dumps({
            "sid": sid, "upgrades": upgrades,
            "pingInterval": int(self.ping_interval * 1000),
            "pingTimeout": int(self.ping_timeout * 1000),
            "maxPayload": self.max_http_buffer_size,
        }, separators=(",", ":"))

    def _allowed(self, request: Any) -> None:
        if self.allow_request is None:
            return
        try:
            verdict = self.allow_request(request)
        except Exception as exc:
            log.warning("engine.io allow_request failed: %r", exc)
            verdict = False
        if verdict is True or verdict is None:
            return
        message = verdict if isinstance(verdict, str) and verdict else None
        raise EngineError(FORBIDDEN, message, context={"message": message})

    def _handshake(self, request: Any, transport: str, cors: list[tuple[str, str]]) -> Response:
        key = None
        if transport == "websocket":
            key = valid_upgrade(request.environ)
            if key is None:
                raise EngineError(BAD_REQUEST, context={"name": "TRANSPORT_HANDSHAKE_ERROR"})
        self._allowed(request)
        sid = secrets.token_urlsafe(15)
        headers = self._headers(request, cors, sid)
        if key is not None:
            return self._websocket(request, key, None, headers, sid)
        upgrades = ["websocket"] if self.allow_upgrades and "websocket" in self.transports else []
        in_process = request.environ.get(IN_PROCESS_KEY)
        socket = Socket(self, sid, request, "in-process" if in_process else "polling")
        socket._queue(self._open_packet(upgrades, sid))
        self._open(socket)
        if in_process:  # a test client: it drains the outbox itself
            request.environ[IN_PROCESS_KEY] = socket
            return Response(200, headers, b"")
        return self._text(packet.encode_payload(socket.take()), headers)

    def _open(self, socket: Socket) -> None:
        self.sockets[socket.sid] = socket
        socket.start_heartbeat()
        self.emit("connection", socket)

    def forget(self, socket: Socket) -> None:
        if self.sockets.get(socket.sid) is socket:
            del self.sockets[socket.sid]

    # -- WebSocket -----------------------------------------------------------------------

    def _websocket(self, request: Any, key: str, socket: Socket | None,
                   headers: list[tuple[str, str]], sid: str | None = None) -> Response:
        sock = raw_socket(request.environ)
        if sock is None:
            raise EngineError(BAD_REQUEST, "WebSocket unsupported by this WSGI server")
        lines = [
            "HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(key)}",
        ] + [f"{k}: {v}" for k, v in headers]
        threshold = None
        if self.per_message_deflate is not None:
            accepted = negotiate_deflate(request.environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS"))
            if accepted is not None:
                lines.append(f"Sec-WebSocket-Extensions: {accepted}")
                threshold = self.per_message_deflate
        try:
            # Small frames must leave at once (Nagle + delayed ACK would add ~40 ms).
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except OSError:
            return HIJACKED
        ws = WebSocket(sock, self.aio, self.max_http_buffer_size, threshold)
        if socket is None:
            assert sid is not None
            socket = Socket(self, sid, request, "websocket")
            socket._queue(self._open_packet([], sid))
            self._open(socket)
            self._run_websocket(ws, socket, request.environ)
        else:
            self._upgrade(ws, socket, request.environ)
        return HIJACKED

    def _upgrade(self, ws: WebSocket, socket: Socket, environ: dict[str, Any]) -> None:
        """The probe dance: ``2probe``/``3probe``, free the pending poll, then ``5``."""
        ws.sock.settimeout(self.upgrade_timeout)
        try:
            if ws.receive() != "2probe":
                raise WebSocketClosed("no probe")
            ws.send(["3probe"])
            socket.upgrading = True
            socket.wake.set()  # the pending GET answers with a NOOP
            if ws.receive() != "5":
                raise WebSocketClosed("no upgrade packet")
        except WebSocketClosed as err:
            log.info("engine.io %s: upgrade failed (%s)", socket.sid, err)
            socket.upgrading = False
            ws.close()
            return
        finally:
            try:
                ws.sock.settimeout(None)
            except OSError:
                pass
        socket.upgrading = False
        if socket.state != OPEN:
            ws.close()
            return
        socket.upgraded = True
        socket.transport = "websocket"
        self.emit("upgrade", socket)
        self._run_websocket(ws, socket, environ)

    def _run_websocket(self, ws: WebSocket, socket: Socket, environ: dict[str, Any]) -> None:
        """Read until the session ends: from the hub once the WSGI server has let the
        connection go (eventlet), else in this thread; writes go as ``attach`` says."""
        socket.abort = ws.abort
        attach(ws, socket)
        detach = environ.get(DETACH_KEY)
        if detach is not None and ws.raw is not None:
            detach()
            # the request body reader (and its buffer) is of no further use
            environ["wsgi.input"] = environ["eventlet.input"] = io.BytesIO()
            HubReader(ws, socket).start()
            return
        read_loop(ws, socket, self.aio.sleep)
