"""A faster HTTP/1.x protocol for ``eventlet.wsgi``: :class:`FastHttpProtocol`.

``eventlet.wsgi.HttpProtocol`` parses every request with the standard library's
``BaseHTTPRequestHandler.parse_request``, which hands the header block to the ``email``
package's feed parser, then builds the environ and writes the response in many small
steps. With Engine.IO long-polling (one small request per message, and with some clients
one TCP connection per request) that is most of the server's per-request work.

:class:`FastHttpProtocol` replaces the request parser with a strict, bounded one:

* request line ``METHOD SP target SP HTTP/1.d`` (at most ``url_length_limit`` bytes, else
  414 as in eventlet; HTTP/2+ gets 505, HTTP/0.9 and anything else 400); up to
  :data:`MAX_EMPTY_LINES` empty lines before it are skipped (RFC 9112 section 2.2);
* header lines shorter than :data:`MAX_HEADER_LINE` bytes and :data:`MAX_HEADERS_SIZE`
  bytes in all (else 400, as in eventlet), at most :data:`MAX_HEADERS` fields (else 431);
  names are RFC 9110 tokens, values lose their surrounding spaces and tabs and may not hold
  NUL, CR or LF; obsolete line folding, a line without a colon or with whitespace before
  it are refused with 400 (the standard library would fold them into a value, or silently
  end the headers there);
* ``Content-Length`` must be digits (repeated only with the same value); with
  ``Transfer-Encoding`` it is refused (400, as eventlet does); a ``Transfer-Encoding``
  other than ``chunked`` gets 501 instead of being read as an empty body.

For a valid request everything else is as eventlet does it, with fewer steps: the same
WSGI environ (keys and values, ``PATH_INFO`` unquoted as latin-1, repeated headers joined
with ``,``, ``CONTENT_TYPE`` defaulting to ``text/plain``, ``eventlet.input`` with
100-continue and chunked input), the same keep-alive decisions and the same response bytes
(status line, capitalised header names, ``Date``, ``Content-Length`` or chunked, 500 on
an exception, ``WSGI_LOCAL.already_handled``, posthooks, access log). Responses go straight
to the socket with one ``sendall`` rather than through a ``BufferedWriter``.

Use it with ``eventlet.wsgi.server(sock, app, protocol=FastHttpProtocol)``;
``IOEngine.run`` and the gunicorn worker do.
"""

from __future__ import annotations

import gc
import operator
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any
from urllib.parse import unquote

import eventlet
import eventlet.wsgi
from eventlet import greenio, support

__all__ = ["FastHttpProtocol", "Headers", "MAX_HEADERS", "MAX_HEADER_LINE", "MAX_HEADERS_SIZE",
           "freeze_startup_objects"]

#: longest header line, CRLF included, is one byte less (as in eventlet)
MAX_HEADER_LINE: int = eventlet.wsgi.MAX_HEADER_LINE
#: most bytes in the header block, CRLFs and the empty line included (as in eventlet)
MAX_HEADERS_SIZE: int = eventlet.wsgi.MAX_TOTAL_HEADER_SIZE
#: most header fields in one request (the standard library allows about as many)
MAX_HEADERS = 100
#: empty lines skipped before a request line (RFC 9112 section 2.2)
MAX_EMPTY_LINES = 4

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
# method SP request-target SP HTTP-version, with CRLF or a bare LF at the end
_REQUEST_LINE = re.compile(
    "([" + _TCHAR + r"]+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])\r?\n")
# field-name ":" OWS field-value; trailing OWS is stripped after the match
_HEADER_LINE = re.compile("([" + _TCHAR + r"]+):[ \t]*([^\x00\r\n]*)\r?\n")
_TOKEN = re.compile("[" + _TCHAR + "]+")

_STATE_REQUEST = eventlet.wsgi.STATE_REQUEST
_STATE_IDLE = eventlet.wsgi.STATE_IDLE
_BROKEN_SOCK = eventlet.wsgi.BROKEN_SOCK
_Input = eventlet.wsgi.Input
_WSGI_LOCAL = eventlet.wsgi.WSGI_LOCAL
_ChunkReadError = eventlet.wsgi.ChunkReadError
_Server = eventlet.wsgi.Server
_encode_header_line = eventlet.wsgi._encode_header_line
_format_date_time = eventlet.wsgi.format_date_time

_TCP_QUICKACK = getattr(eventlet.wsgi.socket, "TCP_QUICKACK", None)
_IPPROTO_TCP = eventlet.wsgi.socket.IPPROTO_TCP
#: response header name -> eventlet's capitalisation of it (bounded)
_CAPITALIZED: dict[Any, str] = {}
_CAPITALIZED_MAX = 512
#: [second, "Date: ...\r\n"]: the Date header changes once a second
_DATE: list[Any] = [-1, ""]

#: header name -> environ key ("" for the two that get no HTTP_ prefix, None for names
#: with "_" which eventlet drops); bounded, for the names clients keep sending
_ENV_KEYS: dict[str, str | None] = {}
_ENV_KEYS_MAX = 512


def freeze_startup_objects() -> None:
    """Call once the app is loaded, before serving: collect what is garbage already, then
    move every object left (modules, the app, its config) to the collector's permanent
    generation (``gc.freeze()``). They live as long as the process; full collections then
    walk only what serving allocated, not tens of thousands of startup objects."""
    gc.collect()
    gc.freeze()


class _BadRequest(Exception):
    """A request refused before the app sees it: ``status`` is the status line's tail."""

    def __init__(self, status: bytes, detail: str = "") -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


class Headers:
    """The request's header fields, in order, names as sent; lookups ignore case.

    Provides what ``eventlet.wsgi`` and ``BaseHTTPRequestHandler`` use from
    ``http.client.HTTPMessage``: ``get``, ``get_all``, ``[name]`` (``None`` when absent,
    as ``email.message.Message`` does), ``in``, ``keys``/``values``/``items``, ``len``,
    iteration over names, ``get_content_type`` and the ``_headers`` list of pairs.
    ``get`` and ``[name]`` return the first field of that name.
    """

    __slots__ = ("_headers", "_first")

    def __init__(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._headers: list[tuple[str, str]] = list(headers)
        first: dict[str, str] = {}
        for name, value in self._headers:
            first.setdefault(name.lower(), value)
        self._first = first

    @classmethod
    def _parsed(cls, headers: list[tuple[str, str]], first: dict[str, str]) -> Headers:
        self = cls.__new__(cls)
        self._headers = headers
        self._first = first
        return self

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of header ``name``, or ``default``."""
        return self._first.get(name.lower(), default)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        """Every value of header ``name`` in order, or ``failobj`` when there is none."""
        lname = name.lower()
        values = [v for k, v in self._headers if k.lower() == lname]
        return values or failobj

    def get_content_type(self) -> str:
        """The lower-cased ``type/subtype`` of ``Content-Type``, ``text/plain`` by default."""
        value = self._first.get("content-type")
        if value is None:
            return "text/plain"
        ctype = value.partition(";")[0].strip().lower()
        return ctype if ctype.count("/") == 1 else "text/plain"

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __len__(self) -> int:
        return len(self._headers)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._headers)

    def keys(self) -> list[str]:
        """Header names, repeated ones repeated, in order."""
        return [k for k, _ in self._headers]

    def values(self) -> list[str]:
        """Header values in order."""
        return [v for _, v in self._headers]

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs in order."""
        return list(self._headers)

    def __repr__(self) -> str:
        return f"Headers({self._headers!r})"


class _Detached:
    """Takes the place of a connection the application took over for good (see
    ``flask_ioengine.detach`` in the environ): eventlet's cleanup then leaves it open."""

    __slots__ = ()

    def shutdown(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass


_DETACHED = _Detached()


class _SocketWriter:
    """``wfile``: each write goes to the socket whole, at once (no buffer to flush)."""

    __slots__ = ("_sock", "closed")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        self._sock.sendall(data)
        return len(data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        self.write(b"".join(lines))

    def flush(self) -> None:
        if self.closed:
            raise ValueError("flush of closed file")

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _environ_key(name: str) -> str | None:
    key = _ENV_KEYS.get(name)
    if key is not None or name in _ENV_KEYS:
        return key
    if "_" in name:  # eventlet drops these: FOO_BAR and FOO-BAR would collide
        key = None
    else:
        key = name.replace("-", "_").upper()
        key = "" if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
    if len(_ENV_KEYS) < _ENV_KEYS_MAX:
        _ENV_KEYS[name] = key
    return key


def _capitalize(name: Any) -> str:
    """``content-TYPE`` -> ``Content-Type``: each ``-`` part ASCII-capitalised, as eventlet."""
    cap = _CAPITALIZED.get(name)
    if cap is None:
        cap = "-".join([x.encode("latin1").capitalize().decode("latin1")
                        for x in name.split("-")])
        if len(_CAPITALIZED) < _CAPITALIZED_MAX:
            _CAPITALIZED[name] = cap
    return cap


def _date_line(now: float) -> str:
    """The ``Date`` header line for the time ``now``."""
    second = int(now)
    if _DATE[0] != second:
        _DATE[1] = f"Date: {_format_date_time(now)}\r\n"
        _DATE[0] = second
    return str(_DATE[1])


def _host_port(addr: Any) -> tuple[str, str]:
    """``(host, port)`` of a socket address as environ strings (eventlet's rules)."""
    if isinstance(addr, tuple):
        return addr[0], str(addr[1])
    return "unix", ""


class FastHttpProtocol(eventlet.wsgi.HttpProtocol):
    """``eventlet.wsgi.HttpProtocol`` with its own request parser, environ builder and
    response writer (see the module's documentation); the connection loop, the request
    body reader (``eventlet.wsgi.Input``) and the server are eventlet's."""

    headers: Headers
    _addresses: tuple[str, str, str, str] | None = None
    _expect_continue = False

    # -- connection ------------------------------------------------------------------

    def setup(self) -> None:
        """Buffered ``rfile`` as eventlet has it; ``wfile`` writes straight to the socket."""
        conn = self.request
        if not (hasattr(conn, "makefile") and hasattr(conn, "sendall")):
            super().setup()  # pyOpenSSL connections and other oddities: eventlet's way
            return
        self.connection = conn
        if _TCP_QUICKACK is not None:  # as eventlet: ACK at once rather than delayed
            try:
                conn.setsockopt(_IPPROTO_TCP, _TCP_QUICKACK, True)
            except OSError:
                pass
        self.rfile = conn.makefile("rb", self.rbufsize)
        self.wfile = _SocketWriter(conn)

    def finish(self) -> None:
        """Close the files and the connection, ignoring a peer that went away; a
        detached connection (now the application's) only loses its files."""
        if self.conn_state[1] is _DETACHED:
            self.wfile.close()
            self.rfile.close()
            return
        wfile = self.wfile
        if not wfile.closed:
            try:
                wfile.flush()
            except OSError:
                pass
        try:
            wfile.close()
            self.rfile.close()
        except OSError as e:
            if support.get_errno(e) not in _BROKEN_SOCK:
                raise
        greenio.shutdown_safe(self.connection)
        self.connection.close()

    # -- one request -----------------------------------------------------------------

    def handle_one_request(self) -> None:
        """Read, check and answer one request (eventlet's flow, this parser)."""
        server = self.server
        if server.max_http_version:
            self.protocol_version = server.max_http_version

        line = self._read_request_line()
        empty = 0
        while line in (b"\r\n", b"\n") and empty < MAX_EMPTY_LINES:
            empty += 1
            line = self._read_request_line()
        self.raw_requestline = line
        self.conn_state[2] = _STATE_REQUEST
        if not line:
            self.close_connection = 1
            return
        if len(line) >= server.url_length_limit:
            self.close_connection = 1
            self._send_final(eventlet.wsgi.RESPONSE_414)
            return
        try:
            self._parse(line)
        except _BadRequest as err:
            self._refuse(err)
            return
        if (self._expect_continue and self.protocol_version >= "HTTP/1.1"
                and self.request_version >= "HTTP/1.1" and not self.handle_expect_100()):
            return

        self.environ = self.get_environ()
        self.application = server.app
        server.outstanding_requests += 1
        try:
            self.handle_one_response()
        except OSError as e:
            if support.get_errno(e) not in _BROKEN_SOCK:
                raise
        finally:
            server.outstanding_requests -= 1

    def _refuse(self, err: _BadRequest) -> None:
        """Answer a refused request and close the connection."""
        self.close_connection = 1
        self.server.log.debug("(%s) refused request from %r: %s %s", self.server.pid,
                              self.client_address, err.status.decode(), err.detail)
        body = err.detail.encode("latin-1", "replace") + b"\n" if err.detail else b""
        self._send_final(b"HTTP/1.0 %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                         % (err.status, len(body), body))

    def _send_final(self, data: bytes) -> None:
        """Write the last response of a connection, unless the peer has gone already."""
        try:
            self.wfile.write(data)
        except OSError as e:
            if support.get_errno(e) not in _BROKEN_SOCK:
                raise

    def _parse(self, raw: bytes) -> None:
        """Parse the request line ``raw`` and the header block from ``rfile``.

        Sets what ``BaseHTTPRequestHandler.parse_request`` sets (``command``, ``path``,
        ``request_version``, ``requestline``, ``headers``, ``close_connection``); raises
        :class:`_BadRequest` for anything malformed or beyond the limits.
        """
        self.command = None
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        line = raw.decode("latin-1")
        self.requestline = line.rstrip("\r\n")
        m = _REQUEST_LINE.fullmatch(line)
        if m is None:
            raise _BadRequest(b"400 Bad Request", "Bad request line")
        method, path, major, minor = m.groups()
        if major != "1":
            if major == "0":
                raise _BadRequest(b"400 Bad Request", "Bad request version")
            raise _BadRequest(b"505 HTTP Version Not Supported")
        version = "HTTP/1." + minor
        if minor != "0" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        self.request_version = version
        self.command = method
        if path.startswith("//"):  # as the standard library does (gh-87389)
            path = "/" + path.lstrip("/")
        self.path = path

        headers, first = self._read_headers()
        repeated = len(first) < len(headers)
        self.headers = hdrs = Headers._parsed(headers, first)

        length = first.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise _BadRequest(b"400 Bad Request", "Bad Content-Length")
            if repeated and any(v != length for v in hdrs.get_all("content-length")):
                raise _BadRequest(b"400 Bad Request", "Conflicting Content-Length")
        encoding = first.get("transfer-encoding")
        if encoding is not None:
            if length is not None and self.reject_bad_requests:
                raise _BadRequest(
                    b"400 Bad Request",
                    "Content-Length and Transfer-Encoding are not allowed together")
            if repeated:
                encoding = ",".join(hdrs.get_all("transfer-encoding"))
            if encoding.lower() != "chunked":
                raise _BadRequest(b"501 Not Implemented", "Unsupported Transfer-Encoding")

        connection = first.get("connection")
        if connection is not None:
            connection = connection.lower()
            if connection == "close":
                self.close_connection = True
            elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
        expect = first.get("expect")
        self._expect_continue = expect is not None and expect.lower() == "100-continue"

    def _read_headers(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Read the header block: the fields in order and the first value per lower-cased
        name. A block already buffered whole, with CRLFs only (the usual case), is split
        with string methods; anything else, or anything doubtful, is read and checked line
        by line (which also names what is wrong)."""
        rfile = self.rfile
        peek = getattr(rfile, "peek", None)
        if peek is None:
            return self._read_header_lines()
        buffered = peek()
        if buffered[:2] == b"\r\n":  # no header at all
            rfile.read(2)
            return [], {}
        end = buffered.find(b"\r\n\r\n")
        if not 0 < end < MAX_HEADER_LINE or buffered.find(b"\x00", 0, end) >= 0:
            return self._read_header_lines()
        block = buffered[:end].decode("latin-1")
        lines = block.split("\r\n")
        crlfs = len(lines) - 1
        if len(lines) > MAX_HEADERS or block.count("\r") != crlfs or block.count("\n") != crlfs:
            return self._read_header_lines()  # too many, or a bare CR or LF somewhere
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            if not (colon and name):
                return self._read_header_lines()
            headers.append((name, value.strip(" \t")))
        if _TOKEN.fullmatch("".join([name for name, _ in headers])) is None:
            return self._read_header_lines()  # a name with a space, a quote...
        rfile.read(end + 4)
        first = {name.lower(): value for name, value in reversed(headers)}
        return headers, first

    def _read_header_lines(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """:meth:`_read_headers` one line at a time, with the limits and the refusals."""
        readline = self.rfile.readline
        match = _HEADER_LINE.fullmatch
        headers: list[tuple[str, str]] = []
        first: dict[str, str] = {}
        size = 0
        while True:
            raw = readline(MAX_HEADER_LINE)
            n = len(raw)
            if n >= MAX_HEADER_LINE:
                raise _BadRequest(b"400 Header Line Too Long")
            size += n
            if size > MAX_HEADERS_SIZE:
                raise _BadRequest(b"400 Headers Too Large")
            if raw == b"\r\n" or raw == b"\n":
                return headers, first
            if not raw or raw[-1:] != b"\n":
                raise _BadRequest(b"400 Bad Request", "Incomplete headers")
            m = match(raw.decode("latin-1"))
            if m is None:
                if raw[:1] in (b" ", b"\t"):
                    raise _BadRequest(b"400 Bad Request", "Obsolete line folding")
                raise _BadRequest(b"400 Bad Request", "Bad header line")
            name, value = m.groups()
            if value[-1:] in (" ", "\t"):
                value = value.rstrip(" \t")
            headers.append((name, value))
            if len(headers) > MAX_HEADERS:
                raise _BadRequest(b"431 Request Header Fields Too Large", "Too many headers")
            first.setdefault(name.lower(), value)

    # -- response --------------------------------------------------------------------

    def handle_one_response(self) -> None:
        """Run the app and write its response: eventlet's behaviour, fewer steps.

        The same status line and headers (names capitalised as eventlet does, a ``Date``
        unless the app sent one, ``Content-Length`` for a list body, else chunked for
        HTTP/1.1), the same keep-alive decision, 100-continue, 500 on an exception,
        ``WSGI_LOCAL.already_handled``, body discard, posthooks and access log.
        """
        start = time.time()
        server = self.server
        environ = self.environ
        request_input = environ["eventlet.input"]
        headers_sent: list[int] = []
        request_input.headers_sent = headers_sent  # no 100 Continue once answering
        wfile = self.wfile
        headers_set: list[Any] = []
        status_code = 200
        bodyless = False  # 1xx, 204, 304, HEAD, 2xx to CONNECT: no body headers
        use_chunked = False
        length = 0
        result: Any = None

        def write(data: bytes) -> None:
            nonlocal use_chunked, length
            if not headers_set:
                raise AssertionError("write() before start_response()")
            if not headers_sent:
                status, response_headers = headers_set
                headers_sent.append(1)
                lines = []
                has_date = has_length = False
                for name, value in response_headers:
                    lname = name.lower()
                    if lname == "date":
                        has_date = True
                    elif lname == "content-length":
                        has_length = True
                    lines.append(str(name) + ": " + str(value) + "\r\n")
                if not has_date:
                    lines.append(_date_line(time.time()))
                client_conn = self.headers.get("Connection", "").lower()
                send_keep_alive = False
                if self.close_connection == 0 and server.keepalive and (
                        client_conn == "keep-alive"
                        or (self.request_version == "HTTP/1.1" and client_conn != "close")):
                    send_keep_alive = client_conn == "keep-alive"  # 1.1 needs no header
                    self.close_connection = 0
                else:
                    self.close_connection = 1
                if not has_length and not bodyless:
                    if self.request_version == "HTTP/1.1":
                        use_chunked = True
                        lines.append("Transfer-Encoding: chunked\r\n")
                    else:
                        self.close_connection = 1  # HTTP/1.0 reads to the close
                if self.close_connection:
                    lines.append("Connection: close\r\n")
                elif send_keep_alive:
                    lines.append("Connection: keep-alive\r\n")
                    timeout = int(server.keepalive or 0)
                    if timeout and not isinstance(server.keepalive, bool):
                        lines.append(f"Keep-Alive: timeout={timeout}\r\n")
                lines.append("\r\n")
                try:
                    head = "".join(lines).encode("latin-1")
                except UnicodeEncodeError:
                    for header in response_headers:
                        _encode_header_line(header)  # raises eventlet's explanation
                    raise
                head = f"{self.protocol_version} {status!s}\r\n".encode() + head
            else:
                head = b""
            if use_chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            if head:
                data = head + data
            wfile.write(data)
            wfile.flush()
            length += len(data)

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            nonlocal status_code, bodyless
            status_code = int(status.split(" ", 1)[0])
            if exc_info:
                try:
                    if headers_sent:  # too late for new headers: re-raise the app's error
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            command = self.command
            bodyless = (status_code in (204, 304) or command == "HEAD"
                        or 100 <= status_code < 200
                        or (command == "CONNECT" and 200 <= status_code < 300))
            if self.capitalize_response_headers:
                response_headers = [(_capitalize(k), v) for k, v in response_headers]
            headers_set[:] = [status, response_headers]
            return write

        try:
            try:
                _WSGI_LOCAL.already_handled = False
                result = self.application(environ, start_response)
                if headers_set and not headers_sent and hasattr(result, "__len__"):
                    # the whole body is known: its length, and no need to read the request's
                    if not bodyless and all(h != "Content-Length" for h, _ in headers_set[1]):
                        headers_set[1].append(("Content-Length", str(sum(map(len, result)))))
                    if request_input.should_send_hundred_continue:
                        self.close_connection = 1
                chunk_size: Any = environ.get("eventlet.minimum_write_chunk_size",
                                              self.minimum_chunk_size)
                minimum = int(chunk_size)
                towrite: list[bytes] = []
                towrite_size = 0
                just_written_size = 0
                for data in result:
                    if not len(data):
                        continue
                    if isinstance(data, str):
                        data = data.encode("ascii")
                    towrite.append(data)
                    towrite_size += len(data)
                    if towrite_size >= minimum:
                        write(b"".join(towrite))
                        towrite = []
                        just_written_size = towrite_size
                        towrite_size = 0
                if _WSGI_LOCAL.already_handled:  # the app took the socket (WebSocket)
                    self.close_connection = 1
                    return
                if towrite:
                    just_written_size = towrite_size
                    write(b"".join(towrite))
                if not headers_sent or (use_chunked and just_written_size):
                    write(b"")  # the headers of an empty body, or the last chunk
            except (Exception, eventlet.Timeout):
                self.close_connection = 1
                tb = traceback.format_exc()
                server.log.info(tb)
                if not headers_sent:
                    err_body = tb.encode() if server.debug else b""
                    start_response("500 Internal Server Error",
                                   [("Content-type", "text/plain"),
                                    ("Content-length", len(err_body))])  # type: ignore[list-item]
                    write(err_body)
        finally:
            if hasattr(result, "close"):
                result.close()
            if request_input.should_send_hundred_continue:
                # answered without reading the body: the client may send it or not
                self.close_connection = 1
            if (request_input.chunked_input
                    or request_input.position < (request_input.content_length or 0)):
                if self.close_connection == 0:  # skip the unread body to reuse the connection
                    try:
                        request_input.discard()
                    except _ChunkReadError as e:
                        self.close_connection = 1
                        server.log.error(
                            "chunked encoding error while discarding request body. "
                            f'client={self.get_client_address()[0]} '
                            f'request="{self.requestline}" error="{e}"')
                    except OSError as e:
                        self.close_connection = 1
                        server.log.error(
                            "I/O error while discarding request body. "
                            f'client={self.get_client_address()[0]} '
                            f'request="{self.requestline}" error="{e}"')
            finish = time.time()
            for hook, args, kwargs in environ["eventlet.posthooks"]:
                hook(environ, *args, **kwargs)
            if server.log_output:
                client_host, client_port = self.get_client_address()
                server.log.info(server.log_format % {
                    "client_ip": client_host,
                    "client_port": client_port,
                    "date_time": self.log_date_time_string(),
                    "request_line": self.requestline,
                    "status_code": status_code,
                    "body_length": length,
                    "wall_seconds": finish - start,
                })

    # -- environ ---------------------------------------------------------------------

    def get_environ(self) -> dict[str, Any]:
        """The WSGI environ of the parsed request, as ``eventlet.wsgi`` builds it."""
        server = self.server
        if type(server).get_environ is _Server.get_environ:
            # what Server.get_environ returns, without asking the listening socket each time
            base: Any = getattr(server, "_fast_http_environ", None)
            if base is None or base[0] is not server.socket:
                wsgi = {"wsgi.version": (1, 0), "wsgi.multithread": True,
                        "wsgi.multiprocess": False, "wsgi.run_once": False,
                        "wsgi.url_scheme": "http"}
                if hasattr(server.socket, "do_handshake"):  # TLS
                    wsgi.update({"wsgi.url_scheme": "https", "HTTPS": "on"})
                base = server._fast_http_environ = (server.socket, wsgi)
            env: dict[str, Any] = {"wsgi.errors": sys.stderr, **base[1]}
            extra = server.environ
            if extra is not None:
                env.update(extra)
        else:
            env = dict(server.get_environ())

        path, question, query = self.path.partition("?")
        first = self.headers._first
        addresses = self._addresses
        if addresses is None:  # the same for every request on this connection
            addresses = self._addresses = (
                *_host_port(self.request.getsockname()), *_host_port(self.client_address))
        env.update({
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "RAW_PATH_INFO": path,
            "PATH_INFO": unquote(path, encoding="latin1") if "%" in path else path,
            "CONTENT_TYPE": first.get("content-type", "text/plain"),
            "SERVER_PROTOCOL": "HTTP/1.0",  # sic: eventlet's value
            "SERVER_NAME": addresses[0],
            "SERVER_PORT": addresses[1],
            "REMOTE_ADDR": addresses[2],
            "REMOTE_PORT": addresses[3],
            "GATEWAY_INTERFACE": "CGI/1.1",
        })
        if question:
            env["QUERY_STRING"] = query
        length = first.get("content-length")
        if length:
            env["CONTENT_LENGTH"] = length

        pairs = self.headers._headers
        env["headers_raw"] = tuple(pairs)
        for name, value in pairs:
            key = _ENV_KEYS.get(name)
            if key is None:
                key = _environ_key(name)
                if key is None:
                    continue
            if not key:
                continue
            if key in env:
                env[key] += "," + value
            else:
                env[key] = value

        if env.get("HTTP_EXPECT", "").lower() == "100-continue":
            wfile: Any = self.wfile
            wfile_line: bytes | None = b"HTTP/1.1 100 Continue\r\n"
        else:
            wfile = wfile_line = None
        chunked = "transfer-encoding" in first  # validated: exactly "chunked"
        if not chunked and length is None:
            length = "0"  # RFC 9112 section 6.3: no framing means no body
        env["wsgi.input"] = env["eventlet.input"] = _Input(
            self.rfile, length, self.connection, wfile=wfile, wfile_line=wfile_line,
            chunked_input=chunked)
        env["eventlet.posthooks"] = []
        # for handlers that never return (WebSockets): mark the connection idle. A partial,
        # not a bound method: the environ must not refer to the protocol, or each finished
        # connection would wait for the garbage collector rather than go at once
        env["eventlet.set_idle"] = partial(operator.setitem, self.conn_state, 2, _STATE_IDLE)
        # for handlers that keep the socket after returning (WebSockets read from the hub):
        # the server's cleanup must then leave the connection open
        env["flask_ioengine.detach"] = partial(operator.setitem, self.conn_state, 1, _DETACHED)
        return env
