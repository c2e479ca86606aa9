"""Engine.IO v4 server: packets, sessions, the polling and WebSocket transports."""
