"""Socket.IO for Flask: Engine.IO v4 and Socket.IO v5 as WSGI middleware on eventlet."""

from .extension import IOEngine
from .socketio.socket import AckTimeoutError, ConnectionRefusedError

__version__ = "0.1.0"
__all__ = ["IOEngine", "AckTimeoutError", "ConnectionRefusedError", "__version__"]
