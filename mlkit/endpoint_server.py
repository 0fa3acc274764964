"""Serve a ``model.tar.gz`` locally the way the SageMaker TensorFlow Serving container does.

Python::

    from mlkit.endpoint_server import EndpointServer

    with EndpointServer(Path("model.tar.gz")) as server:  # port 0: a free port
        ...  # POST f"{server.url}/invocations"

Command line (serves until SIGTERM or SIGINT; logs one ``ready`` line once ``/ping`` passes)::

    python -m mlkit.endpoint_server --model-tar model.tar.gz [--host 127.0.0.1] [--port 8080] [--workdir DIR]

See :mod:`mlkit.endpoint` for what is emulated and how.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from mlkit.endpoint.model_dir import EndpointLoadError
from mlkit.endpoint.server import (
    MAX_PAYLOAD_BYTES,
    MODEL_LATENCY_HEADER,
    OVERHEAD_LATENCY_HEADER,
    PREDICT_LATENCY_HEADER,
    READY_TIMEOUT_S,
    EndpointServer,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MODEL_LATENCY_HEADER",
    "OVERHEAD_LATENCY_HEADER",
    "PREDICT_LATENCY_HEADER",
    "EndpointLoadError",
    "EndpointServer",
    "main",
]

log = logging.getLogger("mlkit.endpoint_server")

#: The port every SageMaker hosting container listens on.
CONTAINER_PORT = 8080


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlkit.endpoint_server",
        description="Serve model.tar.gz with GET /ping and POST /invocations, like the SageMaker TF Serving container.",
    )
    parser.add_argument("--model-tar", type=Path, required=True, help="model.tar.gz (or an unpacked model directory)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=CONTAINER_PORT, help="port to listen on; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument("--workdir", type=Path, help="where to unpack the model (default: a temporary directory)")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=READY_TIMEOUT_S,
        help="seconds the model may take to load (default: %(default)s, SageMaker's ping deadline)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the endpoint until SIGTERM or SIGINT.

    Returns:
        0 after a clean stop, 1 if the model cannot be served or the port cannot be bound.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    server = EndpointServer(args.model_tar, host=args.host, port=args.port, workdir=args.workdir)
    try:
        server.start()
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, error)
        return 1
    try:
        if not _wait_until_ready(server, stopping, args.ready_timeout):
            return 1 if not stopping.is_set() else 0
        service = server.service
        mode = service.mode if service is not None else "?"
        log.info("ready: %s serving %s (requests through %s)", server.url, args.model_tar, mode)
        while not stopping.wait(1.0):
            pass
        return 0
    finally:
        server.stop()


def _wait_until_ready(server: EndpointServer, stopping: threading.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not stopping.is_set():
        try:
            server.wait_ready(timeout=0.25)
            return True
        except TimeoutError:
            if time.monotonic() > deadline:
                log.error("the model did not load within %.0f s", timeout)
                return False
        except EndpointLoadError as error:
            log.error("cannot serve %s: %s", server.model_tar, error)
            return False
    return False


if __name__ == "__main__":
    sys.exit(main())
