"""Socket.IO for Flask: Engine.IO v4 and Socket.IO v5 as WSGI middleware on eventlet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["IOEngine", "AckTimeoutError", "ConnectionRefusedError", "__version__"]

if TYPE_CHECKING:
    from .extension import IOEngine
    from .socketio.socket import AckTimeoutError, ConnectionRefusedError


def __getattr__(name: str) -> Any:
    # Lazy, so that ``flask_ioengine.gunicorn`` can be imported by gunicorn's arbiter
    # without importing Flask before the worker monkey-patches.
    if name == "IOEngine":
        from .extension import IOEngine

        return IOEngine
    if name in ("AckTimeoutError", "ConnectionRefusedError"):
        from .socketio import socket

        return getattr(socket, name)
    raise AttributeError(name)
