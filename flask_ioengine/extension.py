"""``IOEngine``: the Flask extension. Options and ``app.config``, the WSGI wrapping, the
Flask contexts around handlers, and ``run()`` on eventlet's WSGI server."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, signals
from flask.ctx import AppContext, RequestContext
from flask.globals import _cv_app, _cv_request
from flask.sessions import SessionInterface

from . import session as session_mod
from .socketio.server import Server

log = logging.getLogger("flask_ioengine")

CONFIG_PREFIX = "IOENGINE_"


class _Middleware:
    """WSGI middleware: Socket.IO requests go to the server, the rest to the Flask app."""

    def __init__(self, io: IOEngine, wsgi_app: Callable[..., Any]) -> None:
        self.io = io
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.io.path) or path + "/" == self.io.path:
            return self.io.wsgi(environ, start_response)
        return self.wsgi_app(environ, start_response)


#: the signals sent when contexts are pushed and popped
_CONTEXT_SIGNALS = (signals.appcontext_pushed, signals.appcontext_popped,
                    signals.appcontext_tearing_down, signals.request_tearing_down)


def _plain(app: Flask) -> bool:
    """True when nothing observes contexts coming and going (no teardown function, no
    receiver of the context signals): pushing and popping them is then only setting and
    resetting Flask's context variables."""
    return (not app.teardown_appcontext_funcs
            and not any(app.teardown_request_funcs.values())
            and not any(signal.receivers for signal in _CONTEXT_SIGNALS))


class _HandlerContext(RequestContext):
    """A request context pushed once per handler call, matched and opened only once,
    with an app context of its own that is reused with a fresh ``g`` each time.

    When nothing observes contexts (``_plain``), a call after the first only binds the
    two contexts to Flask's context variables and unbinds them after: the same state for
    the handler (``request``, ``session``, ``g``, ``current_app``) at a fraction of the
    cost of ``push``/``pop``.
    """

    busy = False
    _matched = False
    _app_ctx: AppContext | None = None
    _tokens: Any = None

    def enter(self) -> None:
        app_ctx = self._app_ctx
        if app_ctx is None:
            app_ctx = self._app_ctx = self.app.app_context()
        app_ctx.g = self.app.app_ctx_globals_class()  # ``g`` lives for one handler call
        if self._matched and _plain(self.app):
            self._tokens = (_cv_app.set(app_ctx), _cv_request.set(self))
            return
        app_ctx.push()
        self.push()

    def leave(self) -> None:
        tokens = self._tokens
        if tokens is not None:
            self._tokens = None
            _cv_request.reset(tokens[1])
            _cv_app.reset(tokens[0])
            return
        try:
            self.pop()
        finally:
            assert self._app_ctx is not None
            self._app_ctx.pop()

    def match_request(self) -> None:
        if not self._matched:
            self._matched = True
            super().match_request()
            error = self.request.routing_exception
            if error is not None:
                # the Engine.IO path is rarely a route: keep the NotFound, not the frames
                # of its traceback (for as long as the connection lives)
                error.__traceback__ = error.__context__ = error.__cause__ = None

    @property
    def session_object(self) -> Any:
        return self._session

    def twin(self) -> _HandlerContext:
        twin = _HandlerContext(self.app, self.request.environ, request=self.request,
                               session=self._session)
        twin._matched = True
        return twin


class IOEngine(Server):
    """Socket.IO for a Flask app: ``IOEngine(app, **options)`` or ``init_app(app)``.

    Every option may also come from ``app.config["IOENGINE_<OPTION>"]``; options given
    to the constructor win. Handlers run inside an app context and a request context
    built from the handshake request, so ``request``, ``session``, ``g`` and
    ``current_app`` work as in a view.
    """

    OPTIONS = (*Server.OPTIONS, "session_reload_interval", "message_queue", "write_only")

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self._explicit = set(options)
        self.session_reload_interval: float | None = None
        #: ``message_queue="redis://..."``: the Redis adapter links the nodes; with
        #: ``write_only=True`` this instance only publishes (a worker, a script).
        self.message_queue: str | None = None
        self.write_only = False
        super().__init__(**options)
        self.app: Flask | None = None
        self.engine.middleware_adapters.append(self._adapt_session_interface)
        if app is not None:
            self.init_app(app)

    def configure(self, **options: Any) -> None:
        """Set options; ``session_reload_interval`` (seconds) reloads each socket's
        session periodically and closes its transport once the session is gone."""
        if "session_reload_interval" in options:
            value = options.pop("session_reload_interval")
            self.session_reload_interval = float(value) if value else None
        queue_changed = "message_queue" in options or "write_only" in options
        if "write_only" in options:
            self.write_only = bool(options.pop("write_only"))
        if "message_queue" in options:
            self.message_queue = options.pop("message_queue") or None
        super().configure(**options)
        if queue_changed and self.message_queue:
            from .socketio.adapters import use_adapter
            from .socketio.adapters.redis import create_redis_adapter

            use_adapter(self, create_redis_adapter(self.message_queue, write_only=self.write_only))

    def _adapt_session_interface(self, obj: Any) -> Any:
        if not isinstance(obj, SessionInterface):
            return None
        if self.app is None:
            raise RuntimeError("call io.engine.use(app.session_interface) after init_app(app)")
        return session_mod.install(self, self.app, obj)

    def _on_connection(self, conn: Any) -> None:
        super()._on_connection(conn)
        session = getattr(conn.request, "session", None)
        if self.session_reload_interval and isinstance(session, session_mod.SocketSession):
            self._watch_session(conn, session, self.session_reload_interval)

    def _watch_session(self, conn: Any, session: session_mod.SocketSession,
                       interval: float) -> None:
        """Reload ``session`` every ``interval`` seconds; close ``conn`` once it is gone."""
        aio = self.aio

        def check() -> None:
            if conn.state != "open":
                return
            try:
                session.check()
            except Exception:
                log.exception("periodic session check failed")
            if session.gone:
                log.info("session %s is gone: closing engine.io %s", session.sid, conn.sid)
                conn.close()
            elif conn.state == "open":
                aio.call_later(interval, aio.spawn, check)

        aio.call_later(interval, aio.spawn, check)

    def test_client(self, app: Flask | None = None, namespace: str | None = None,
                    query_string: str | None = None, headers: dict[str, str] | None = None,
                    auth: dict[str, Any] | None = None, flask_test_client: Any = None) -> Any:
        """An in-process Socket.IO client for tests (``flask_ioengine.testing``); with
        ``flask_test_client`` it sends that client's cookies, so both share the session."""
        from .testing import SocketIOTestClient

        return SocketIOTestClient(self, app, namespace, query_string, headers, auth,
                                  flask_test_client)

    def logout(self) -> str | None:
        """In a view: clear the Flask session (Flask-Session deletes it from the store at
        the end of the request) and disconnect every socket in its session-id room, on
        every node. Returns the session id."""
        from flask import session

        sid = getattr(session, "sid", None)
        session.clear()
        if sid:
            self.in_(sid).disconnect_sockets()
        return sid

    def init_app(self, app: Flask) -> None:
        from_config = {
            key[len(CONFIG_PREFIX):].lower(): value
            for key, value in app.config.items()
            if key.startswith(CONFIG_PREFIX)
        }
        options = {k: v for k, v in from_config.items() if k not in self._explicit}
        if "request_class" not in self._explicit:
            options["request_class"] = app.request_class
        self.configure(**options)
        self.app = app
        app.extensions["ioengine"] = self
        app.wsgi_app = _Middleware(self, app.wsgi_app)  # type: ignore[method-assign]

    def call_handler(self, socket: Any, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` inside a fresh app context and a request context of the handshake.

        The request context is built once per connection (its URL matched once, its
        session opened once) and pushed again for each call; a nested or concurrent call
        gets its own copy sharing the request and session.
        """
        app = self.app
        if app is None:
            return fn(*args)
        client = socket.client
        ctx: _HandlerContext | None = client.context
        if ctx is None:
            request = socket.request
            ctx = client.context = _HandlerContext(
                app, request.environ, request=request, session=getattr(request, "session", None))
        elif ctx.busy:
            ctx = ctx.twin()
        ctx.busy = True
        ctx.enter()
        try:
            return fn(*args)
        finally:
            session = ctx.session_object
            if isinstance(session, session_mod.SocketSession):
                session.release()  # a reload() without save() must not keep the lock
            ctx.leave()
            ctx.busy = False

    def run(self, app: Flask | None = None, host: str = "127.0.0.1", port: int = 5000,
            log_output: bool = False, **server_options: Any) -> None:
        """Serve ``app`` on eventlet's WSGI server.

        Everything allocated until then (modules, the app, its config) is moved out of
        the garbage collector's sight (``gc.freeze()``): it lives as long as the process,
        and full collections no longer walk it. Connections are served by green threads
        that are reused (``flask_ioengine.workers.WorkerPool``) unless ``custom_pool`` is
        given.
        """
        import eventlet

        from .concurrency import eventlet_patched, get_backend

        if not eventlet_patched():
            log.warning("eventlet is not monkey-patched: call eventlet.monkey_patch() at the "
                        "top of your entry module, or blocking I/O in handlers stalls everyone")
        import eventlet.wsgi

        app = app or self.app
        if app is None:
            raise RuntimeError("IOEngine.run needs a Flask app")
        self.engine.aio = get_backend("eventlet")
        port = int(os.environ.get("PORT", port)) if port is None else port
        log.info("flask_ioengine serving on http://%s:%d/", host, port)
        sock = eventlet.listen((host, port), backlog=int(server_options.pop("backlog", 2048)))
        # eventlet's default pool of 1024 green threads would cap the connections served.
        server_options.setdefault("max_size", 100_000)
        from .http import FastHttpProtocol, freeze_startup_objects
        from .workers import WorkerPool

        if "custom_pool" not in server_options:
            server_options["custom_pool"] = WorkerPool(server_options["max_size"])
        freeze_startup_objects()
        eventlet.wsgi.server(sock, app, log_output=log_output,
                             **{"protocol": FastHttpProtocol, **server_options})
