"""The endpoint's HTTP server: ``GET /ping`` and ``POST /invocations``, like any SageMaker container.

:class:`EndpointServer` binds first (so its URL is known at once), then unpacks and loads the model in
the background; ``/ping`` answers 200 once the model is loaded, 503 while loading, and 500 if loading
failed. Requests are served concurrently by a thread each (the model's concrete function is
thread-safe). What SageMaker's front end enforces is enforced here: bodies over 6 MB get 413 without
being held in memory. No failure of a request stops the server; an unexpected one is logged and
answered 500 with its message.

Every ``/invocations`` answer carries its latencies in microseconds, also kept in :attr:`EndpointServer.stats`
(see :mod:`mlkit.endpoint.stats`): ``X-Mlkit-Model-Latency-Us``, ``X-Mlkit-Overhead-Latency-Us`` and
``X-Mlkit-Predict-Latency-Us`` (the signature call alone).

TF Serving's REST API (``/v1/models/model...``) is served on the same port, so that a custom
``handler(data, context)`` can post to ``context.rest_uri`` as it would in the container.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from mlkit.endpoint.container import ContainerService, Headers, Invocation
from mlkit.endpoint.model_dir import EndpointLoadError, extract_model, find_layout
from mlkit.endpoint.stats import EndpointStats, InvocationRecord
from mlkit.endpoint.tfs import TensorFlowServing

log = logging.getLogger(__name__)

#: SageMaker's InvokeEndpoint payload cap.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: SageMaker requires pings to pass within 4 minutes of the container's start.
READY_TIMEOUT_S = 240.0
MODEL_LATENCY_HEADER = "X-Mlkit-Model-Latency-Us"
OVERHEAD_LATENCY_HEADER = "X-Mlkit-Overhead-Latency-Us"
PREDICT_LATENCY_HEADER = "X-Mlkit-Predict-Latency-Us"
# An oversized body is read and thrown away (64 KiB at a time) so that the client, still sending,
# gets the 413 instead of a reset connection; beyond this size the connection is just closed.
_DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024
_LIMIT_TEXT = f"{MAX_PAYLOAD_BYTES // (1024 * 1024)} MB payload limit"


class _Refusal(NamedTuple):
    """A request body that is not accepted: the status and message to answer with."""

    status: int
    message: str


class EndpointServer:
    """A local SageMaker TF Serving endpoint for one ``model.tar.gz``.

    Use it as a context manager (start and wait until ready, stop on exit)::

        with EndpointServer(Path("model.tar.gz")) as server:
            urllib.request.urlopen(f"{server.url}/ping")

    Args:
        model_tar: The model archive (an unpacked model directory also works).
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one (see :attr:`url`).
        workdir: Where to unpack the archive (a new subdirectory, removed on stop); a temporary
            directory when ``None``.
    """

    def __init__(self, model_tar: Path, *, host: str = "127.0.0.1", port: int = 0, workdir: Path | None = None) -> None:
        self.model_tar = Path(model_tar)
        self.host = host
        self.port = port
        self.workdir = workdir
        self.stats = EndpointStats()
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._settled = threading.Event()
        self._service: ContainerService | None = None
        self._error: BaseException | None = None
        self._scratch: Path | None = None
        self._stopped = False

    # ---- lifecycle

    def start(self) -> None:
        """Listen, then load the model in the background (see :meth:`wait_ready`).

        Raises:
            OSError: If the address cannot be bound.
            RuntimeError: If the server was started before.
        """
        if self._httpd is not None:
            raise RuntimeError("the endpoint server was already started")
        self._httpd = _HttpServer((self.host, self.port), self)
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, name="endpoint-http", daemon=True),
            threading.Thread(target=self._load, name="endpoint-load", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float | None = READY_TIMEOUT_S) -> None:
        """Block until the model is loaded.

        Args:
            timeout: Seconds to wait; ``None`` waits for as long as loading takes.

        Raises:
            EndpointLoadError: If loading failed (:class:`~mlkit.endpoint.model_dir.ModelLayoutError`
                for a bad archive layout).
            TimeoutError: If the model is still loading after ``timeout``.
            RuntimeError: If the server was not started.
        """
        if self._httpd is None:
            raise RuntimeError("start() the endpoint server first")
        if not self._settled.wait(timeout):
            raise TimeoutError(f"the model in {self.model_tar} did not load within {timeout} s")
        if isinstance(self._error, EndpointLoadError):
            raise self._error
        if self._error is not None:
            raise EndpointLoadError(f"loading {self.model_tar} failed: {self._error}") from self._error

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop accepting, let requests in progress finish, close connections, remove the unpacked model.

        Safe to call twice.

        Args:
            drain_timeout: Seconds to wait for requests in progress before closing their connections.
        """
        if self._httpd is None or self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.close_connections(drain_timeout)
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=120)  # a load in progress finishes first; it is bounded
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> EndpointServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # ---- state

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080`` (``/ping`` and ``/invocations`` below it)."""
        if self._httpd is None:
            raise RuntimeError("the endpoint server has no URL before start()")
        host, port = self._httpd.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def ready(self) -> bool:
        """Whether the model is loaded and ``/invocations`` is served."""
        return self._service is not None

    @property
    def service(self) -> ContainerService | None:
        """The loaded request path (``None`` until ready)."""
        return self._service

    @property
    def load_error(self) -> BaseException | None:
        """Why loading failed, if it did."""
        return self._error

    def _load(self) -> None:
        try:
            if self.model_tar.is_dir():
                root = self.model_tar
            else:
                if self.workdir is not None:
                    self.workdir.mkdir(parents=True, exist_ok=True)
                self._scratch = Path(tempfile.mkdtemp(prefix="mlkit-endpoint-", dir=self.workdir))
                root = extract_model(self.model_tar, self._scratch)
            layout = find_layout(root)
            tfs = TensorFlowServing(layout)
            self._service = ContainerService(layout, tfs, self.url)
            log.info("loaded %s: version %d, requests through %s", self.model_tar, layout.version, self._service.mode)
        except BaseException as error:  # reported by wait_ready() and /ping; the thread must not die silently
            log.error("cannot serve %s: %s", self.model_tar, error)
            self._error = error
        finally:
            self._settled.set()


class _HttpServer(ThreadingHTTPServer):
    """A thread per connection; remembers open connections so that stop() can close idle ones."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], endpoint: EndpointServer) -> None:
        self.endpoint = endpoint
        self._connections: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
            self._busy.discard(request)
        super().shutdown_request(request)

    def set_busy(self, connection: socket.socket, busy: bool) -> None:
        """Mark a connection as serving a request (True) or waiting for the next one (False)."""
        with self._connections_lock:
            (self._busy.add if busy else self._busy.discard)(connection)

    def close_connections(self, drain_timeout: float) -> None:
        """Close idle keep-alive connections at once, busy ones when their request is answered.

        Args:
            drain_timeout: Seconds to wait for busy connections before closing them anyway.
        """
        deadline = time.monotonic() + drain_timeout
        while True:
            with self._connections_lock:
                busy = set(self._busy)
                closing = [c for c in self._connections if c not in busy or time.monotonic() > deadline]
            for connection in closing:
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)
            if not busy or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, like SageMaker's front end talking to the container."""

    protocol_version = "HTTP/1.1"
    server_version = "mlkit-endpoint"
    timeout = 65  # idle keep-alive connections are dropped; an invocation may take 60 s
    server: _HttpServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        """Serve ``/ping`` and TF Serving's model status."""
        self._serve("GET")

    def do_POST(self) -> None:
        """Serve ``/invocations`` and TF Serving's predict API."""
        self._serve("POST")

    def _serve(self, method: str) -> None:
        started = time.perf_counter_ns()
        self._body_read = not self._has_body()
        self.server.set_busy(self.connection, True)
        try:
            path = urlsplit(self.path).path
            if method == "GET" and path == "/ping":
                self._ping()
            elif method == "POST" and path == "/invocations":
                self._invocations(started)
            elif path.startswith("/v1/models/"):
                self._tfs(method, path)
            else:
                self._send_json(404, {"error": "Not Found"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away
        except Exception as error:  # a bug here must cost one request, not the server
            log.exception("internal error serving %s %s", method, self.path)
            self.close_connection = True
            self._send_json(500, {"error": f"internal error: {type(error).__name__}: {error}"})
        finally:
            self.server.set_busy(self.connection, False)

    def _ping(self) -> None:
        endpoint = self.server.endpoint
        if endpoint.ready:
            self._send(200, b"", "application/json")
        elif endpoint.load_error is not None:
            self._send_json(500, {"error": f"the model failed to load: {endpoint.load_error}"})
        else:
            self._send_json(503, {"error": "the model is loading"})

    def _invocations(self, started: int) -> None:
        service = self.server.endpoint.service
        if service is None:
            self._ping()  # 503 while loading, 500 if loading failed
            return
        body = self._read_body()
        if isinstance(body, _Refusal):  # refused before any model work, as SageMaker's front end does
            overhead_us = (time.perf_counter_ns() - started) // 1000
            self.server.endpoint.stats.record(InvocationRecord(body.status, 0, overhead_us, 0))
            self._send_json(body.status, {"error": body.message})
            return
        model_started = time.perf_counter_ns()
        try:
            result = service.invoke(body, Headers(self.headers.items()))
        except Exception as error:  # invoke() answers handler failures itself; this is a bug
            log.exception("internal error in the container emulation")
            result = Invocation(500, _json({"error": f"internal error: {type(error).__name__}: {error}"}), "")
        model_us = (time.perf_counter_ns() - model_started) // 1000
        overhead_us = max(0, (time.perf_counter_ns() - started) // 1000 - model_us)
        latencies = {
            MODEL_LATENCY_HEADER: str(model_us),
            OVERHEAD_LATENCY_HEADER: str(overhead_us),
            PREDICT_LATENCY_HEADER: str(result.predict_us),
        }
        # Recorded before answering, so that a client that got its answer also finds it in the stats.
        self.server.endpoint.stats.record(InvocationRecord(result.status, model_us, overhead_us, result.predict_us))
        self._send(result.status, result.body, result.content_type or "application/json", latencies)

    def _tfs(self, method: str, path: str) -> None:
        service = self.server.endpoint.service
        if service is None:
            self._ping()
            return
        body = self._read_body() if method == "POST" else b""
        if isinstance(body, _Refusal):
            self._send_json(body.status, {"error": body.message})
            return
        reply = service.tfs.handle(method, path, body)
        self._send(reply.status, reply.body, "application/json")

    # ---- request bodies and answers

    def _has_body(self) -> bool:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return True
        try:
            return int(self.headers.get("Content-Length", "0")) != 0
        except ValueError:
            return True  # unknown length: the connection cannot be reused

    def _read_body(self) -> bytes | _Refusal:
        """Read the body, or say why it cannot be accepted (the caller answers)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():  # wins over Content-Length
            return self._read_chunked()
        raw = self.headers.get("Content-Length", "0")
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            return _Refusal(400, f"invalid Content-Length {raw!r}")
        if length > MAX_PAYLOAD_BYTES:
            self._discard(length)
            return _Refusal(413, f"request body of {length} bytes exceeds the {_LIMIT_TEXT}")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return _Refusal(400, f"the body ended after {len(body)} of {length} bytes")
        self._body_read = True
        return body

    def _read_chunked(self) -> bytes | _Refusal:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                return _Refusal(400, "malformed chunked body")
            if size == 0:
                break
            total += size
            if total > _DRAIN_LIMIT:
                self.close_connection = True
                return _Refusal(413, f"request body exceeds the {_LIMIT_TEXT}")
            if total > MAX_PAYLOAD_BYTES:
                parts.clear()  # keep draining so that the client reads the 413, but hold nothing
                self._skip(size)
            else:
                parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF closing the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailer fields: not used
        self._body_read = True
        if total > MAX_PAYLOAD_BYTES:
            return _Refusal(413, f"request body of {total} bytes exceeds the {_LIMIT_TEXT}")
        return b"".join(parts)

    def _skip(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)

    def _discard(self, length: int) -> None:
        if length > _DRAIN_LIMIT:
            return  # _send() closes the connection: the body was not read
        self._skip(length)
        self._body_read = True

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, _json(document), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        if not self._body_read:
            self.close_connection = True  # unread body bytes would be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()
