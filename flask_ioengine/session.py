"""The Flask session shared with sockets: ``io.engine.use(app.session_interface)``.

For every Engine.IO HTTP request the adapter opens the session from the request's
cookies and attaches it as ``request.session``: a ``SocketSession`` wrapping what the
app's ``SessionInterface`` returned. The handshake request becomes ``socket.request``,
so ``socket.request.session`` (and ``flask.session`` in handlers) is that object.

Consistency: ``reload()`` takes a per-session lock that ``save()`` (or the end of the
handler) releases, and HTTP views hold the same lock from opening to saving their
session. A socket's reload-modify-save and a view's request therefore never interleave
inside one process, and no write is lost; between them, the last save wins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin

from .concurrency import Backend

log = logging.getLogger("flask_ioengine.session")

LOCK_TIMEOUT = 10.0


class SessionSaveError(RuntimeError):
    """``save()`` is impossible for this session (e.g. a signed-cookie session)."""


class _KeyedLocks:
    """One lock per session key, created on demand and dropped when unused. The table
    itself is guarded, so OS threads (``flask run``) cannot race on it."""

    def __init__(self) -> None:
        self._locks: dict[str, list[Any]] = {}  # key -> [lock, users]
        self._guard = threading.Lock()  # held only for dict updates, never across waits

    def acquire(self, aio: Backend, key: str, timeout: float = LOCK_TIMEOUT) -> bool:
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = [aio.lock(), 0]
            entry[1] += 1
        if entry[0].acquire(timeout=timeout):
            return True
        self._drop(key, entry)
        log.warning("session lock for %s not acquired in %ss; going on without it",
                    key[:8], timeout)
        return False

    def release(self, key: str) -> None:
        entry = self._locks.get(key)
        if entry is None:
            return
        entry[0].release()
        self._drop(key, entry)

    def _drop(self, key: str, entry: list[Any]) -> None:
        with self._guard:
            entry[1] -= 1
            if entry[1] <= 0 and self._locks.get(key) is entry:
                del self._locks[key]


class SocketSession(MutableMapping[str, Any]):
    """The session of a socket's handshake request: mapping access, ``sid``, ``exists``,
    ``reload()`` and ``save()``; ``permanent``/``modified``/``new`` are the wrapped
    session's."""

    def __init__(self, adapter: SessionAdapter, request: Any, inner: SessionMixin) -> None:
        self._adapter = adapter
        self._request = request
        self._inner = inner
        self._held = False
        self.sid: str | None = getattr(inner, "sid", None)
        #: True while the session store holds this session (False once destroyed/expired).
        self.exists: bool = adapter.in_store(inner)
        self._existed = self.exists

    # -- mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._inner[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._inner[key] = value

    def __delitem__(self, key: str) -> None:
        del self._inner[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)

    def __repr__(self) -> str:
        return f"<SocketSession {self.sid} {dict(self._inner)!r}>"

    @property
    def permanent(self) -> bool:
        return bool(self._inner.permanent)

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self._inner.permanent = value

    @property
    def modified(self) -> bool:
        return bool(self._inner.modified)

    @modified.setter
    def modified(self, value: bool) -> None:
        self._inner.modified = value

    @property
    def new(self) -> bool:
        return bool(self._inner.new)

    @property
    def accessed(self) -> bool:
        return bool(getattr(self._inner, "accessed", True))

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self._inner.accessed = value

    @property
    def session(self) -> SessionMixin:
        """The wrapped session object the app's ``SessionInterface`` returned."""
        return self._inner

    @property
    def gone(self) -> bool:
        """The session existed and has since been destroyed or has expired."""
        return self._existed and not self.exists

    # -- store -----------------------------------------------------------------------------

    @property
    def _key(self) -> str | None:
        return self._adapter.cookie_value(self._request)

    def _lock(self) -> None:
        key = self._key
        if not self._held and key is not None:
            self._held = self._adapter.locks.acquire(self._adapter.aio, key)

    def release(self) -> None:
        """Release the lock ``reload()`` took (``save()`` and the end of a handler do)."""
        if self._held:
            self._held = False
            key = self._key
            if key is not None:
                self._adapter.locks.release(key)

    def reload(self) -> bool:
        """Re-read the session from the store into this same object; returns ``exists``.

        Holds the session's lock until ``save()`` or the end of the current handler.
        A signed-cookie session cannot be reloaded (its cookie is the handshake's, fixed
        for the life of the socket): ``SessionSaveError``, naming Flask-Session.
        """
        if self._adapter.cookie_session:
            raise SessionSaveError(
                "this is a signed-cookie session: the socket only has the cookie its "
                "handshake carried, so there is nothing newer to reload and nothing can be "
                "saved. Use a server-side session (Flask-Session) to reload and save from "
                "socket handlers.")
        self._lock()
        fresh = self._adapter.reopen(self._request, self.sid)
        self.exists = self._adapter.in_store(fresh)
        self._existed = self._existed or self.exists
        if self.exists or getattr(fresh, "sid", None) == self.sid:
            self._inner = fresh
        else:  # destroyed or expired: keep the sid the rooms know, drop the data
            self._inner.clear()
        return self.exists

    def check(self) -> bool:
        """Does the store still hold this session? Reads without touching this object's
        data or lock (a handler may be in the middle of reload-change-save)."""
        present = self._adapter.in_store(self._adapter.reopen(self._request, self.sid))
        if not present and self._existed:
            self.exists = False
        return present

    def save(self) -> None:
        """Write the session to the store (server-side sessions only)."""
        try:
            if self.gone:
                raise SessionSaveError("the session was destroyed or has expired")
            self._adapter.save(self._inner)
            self.exists = self.exists or bool(self._inner)
            self._existed = self._existed or self.exists
        finally:
            self.release()

    @contextmanager
    def locked(self) -> Iterator[SocketSession]:
        """``with session.locked():`` reload, change, save, as one step."""
        self.reload()
        try:
            yield self
        finally:
            self.release()


class SessionAdapter:
    """An ``engine.use()`` middleware opening the Flask session for each request."""

    def __init__(self, io: Any, interface: SessionInterface) -> None:
        self.io = io
        self.interface = interface
        self.locks = _KeyedLocks()
        self.cookie_session = isinstance(interface, SecureCookieSessionInterface)

    @property
    def app(self) -> Flask:
        app = self.io.app
        if app is None:
            raise RuntimeError("the session adapter needs IOEngine.init_app(app) first")
        return app

    @property
    def aio(self) -> Backend:
        return self.io.aio

    def __call__(self, request: Any, next: Any) -> Any:
        request.session = SocketSession(self, request, self.open(request))
        return next()

    def cookie_value(self, request: Any) -> str | None:
        return request.cookies.get(self.app.config["SESSION_COOKIE_NAME"])

    def open(self, request: Any) -> SessionMixin:
        app = self.app
        with app.app_context():
            session = self.interface.open_session(app, request)
            if session is None:
                session = self.interface.make_null_session(app)
        return session

    def reopen(self, request: Any, sid: str | None) -> SessionMixin:
        """The session called ``sid`` as the store holds it now. Reading by sid, not by
        the handshake's cookie, also finds a session first saved from a socket (whose
        handshake carried no session cookie). Falls back to ``open_session``."""
        interface = self.interface
        retrieve = getattr(interface, "_retrieve_session_data", None)
        session_class = getattr(interface, "session_class", None)
        if sid is None or retrieve is None or session_class is None:
            return self.open(request)
        app = self.app
        with app.app_context():
            store_id = getattr(interface, "key_prefix", "") + sid
            data = retrieve(store_id)
            if data is None:
                return session_class(sid=sid, permanent=getattr(interface, "permanent", True))
            return session_class(data, sid=sid)

    def in_store(self, session: SessionMixin) -> bool:
        """Does the store hold ``session``? (Flask-Session never stores an empty one.)"""
        if self.cookie_session:
            return True
        return bool(session)

    def save(self, session: SessionMixin) -> None:
        if self.cookie_session or not hasattr(session, "sid"):
            raise SessionSaveError(
                "this is a signed-cookie session: it lives in the browser's cookie, which "
                "cannot be rewritten over an open socket. Use a server-side session "
                "(Flask-Session, e.g. SESSION_TYPE='redis' or 'cachelib') to save from "
                "socket handlers.")
        app = self.app
        session.modified = True
        with app.app_context():
            self.interface.save_session(app, session, app.response_class())


class LockingSessionInterface(SessionInterface):
    """Wraps the app's session interface so each HTTP request holds the session's lock
    from ``open_session`` to ``save_session`` (released at teardown at the latest)."""

    def __init__(self, inner: SessionInterface, adapter: SessionAdapter) -> None:
        self.inner = inner
        self.adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open_session(self, app: Flask, request: Any) -> SessionMixin | None:
        key = self.adapter.cookie_value(request)
        if key is not None and self.adapter.locks.acquire(self.adapter.aio, key):
            request.environ["ioengine.session_lock"] = key
        return self.inner.open_session(app, request)

    def make_null_session(self, app: Flask) -> Any:
        return self.inner.make_null_session(app)

    def is_null_session(self, obj: object) -> bool:
        return self.inner.is_null_session(obj)

    def save_session(self, app: Flask, session: SessionMixin, response: Any) -> None:
        try:
            self.inner.save_session(app, session, response)
        finally:
            release_view_lock(self.adapter)


def release_view_lock(adapter: SessionAdapter) -> None:
    """Release the lock the current request took in ``open_session``, if any."""
    from flask import request

    key = request.environ.pop("ioengine.session_lock", None)
    if key is not None:
        adapter.locks.release(key)


def install(io: Any, app: Flask, interface: SessionInterface) -> SessionAdapter:
    """Create the adapter for ``interface`` and make the app's views take the same locks."""
    adapter = SessionAdapter(io, interface)
    if not adapter.cookie_session and app.session_interface is interface:
        app.session_interface = LockingSessionInterface(interface, adapter)
        app.teardown_request(lambda exc: release_view_lock(adapter))
    return adapter
