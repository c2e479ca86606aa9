"""Socket.IO for Flask: Engine.IO v4 and Socket.IO v5 as WSGI middleware on eventlet."""

__version__ = "0.1.0"
