"""Subprocesses of the project's Python: job runs and endpoint servers (no LocalStack imports).

Jobs and endpoints run as children of the LocalStack process, in its process group, so that
``mlkit local down`` ends them with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import settings


def aws_env(
    *, endpoint_url: str, account_id: str, region: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the environment of a subprocess that talks to LocalStack as ``account_id`` in ``region``.

    Args:
        endpoint_url: LocalStack's gateway URL (every AWS SDK since 2023 honours ``AWS_ENDPOINT_URL``).
        account_id: A 12-digit access key makes LocalStack use that account.
        region: The region of the job or endpoint.
        extra: More variables, which win.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PROVIDER_OVERRIDE_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ENDPOINT_URL_S3": endpoint_url,
            "AWS_S3_FORCE_PATH_STYLE": "1",
            "AWS_ACCESS_KEY_ID": account_id,
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    env.update(extra or {})
    return env


class Stopper:
    """The processes of one job (a training job, a Glue job run) and whether a stop was asked for.

    A stop reaches every process the job has started, and also one it starts afterwards: a stop
    that arrives while the job is still downloading its inputs is not lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._requested = False

    @property
    def requested(self) -> bool:
        """Whether :meth:`request` was called."""
        return self._requested

    def register(self, process: subprocess.Popen[bytes]) -> None:
        """Track a process of the job; stop it at once if the job was already asked to stop."""
        with self._lock:
            self._processes.append(process)
            late = self._requested
        if late:
            stop(process)

    def request(self) -> None:
        """Ask the job to stop: SIGTERM (then SIGKILL) every process it has started."""
        with self._lock:
            self._requested = True
            running = list(self._processes)
        for process in running:
            stop(process)


def run_logged(
    command: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str],
    timeout: float | None,
    error_path: Path | None = None,
    on_start: threading.Event | None = None,
    register: Stopper | None = None,
) -> tuple[int | None, bool]:
    """Run ``command`` with its output into ``log_path``.

    Args:
        command: The program and its arguments.
        log_path: File that receives stdout, and stderr too unless ``error_path`` is given.
        error_path: File that receives stderr on its own.
        env: The environment.
        timeout: Seconds before the process is killed; ``None`` for no limit.
        on_start: Set once the process has started.
        register: Tracks the started process, so that the job it belongs to can stop it.

    Returns:
        ``(exit code, timed out)``; the exit code is negative for a signal.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = settings.project_root()
    with log_path.open("wb") as log, error_path.open("wb") if error_path else contextlib.nullcontext() as errors:
        process = subprocess.Popen(
            list(command),
            cwd=root if root and root.exists() else None,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=errors if errors is not None else subprocess.STDOUT,
        )
        if register is not None:
            register.register(process)
        if on_start is not None:
            on_start.set()
        try:
            return process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            stop(process)
            return process.returncode, True


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM ``process``, then SIGKILL it if it has not exited after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=5)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tail_text(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file (empty when missing)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(line for line in text.splitlines()[-lines:])


class EndpointServer:
    """One endpoint-container emulation (``python -m mlkit.endpoint_server``) serving a ``model.tar.gz``.

    Args:
        model_tar: The model archive downloaded from S3.
        workdir: Where the server unpacks the model; its log goes to ``workdir/server.log``.
        env: The server's environment (the model's container ``Environment`` included).
    """

    def __init__(self, model_tar: Path, workdir: Path, env: Mapping[str, str]) -> None:
        self.model_tar = model_tar
        self.workdir = workdir
        self.env = dict(env)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    @property
    def url(self) -> str:
        """Base URL of the server (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, ping_timeout: float) -> None:
        """Start the server and wait until ``GET /ping`` answers 200.

        Raises:
            RuntimeError: The server exited or did not pass its ping in time; the message carries its log's tail.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = [
            settings.project_python(),
            "-m",
            "mlkit.endpoint_server",
            "--model-tar",
            str(self.model_tar),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workdir",
            str(self.workdir / "model"),
        ]
        root = settings.project_root()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=root if root and root.exists() else None,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ping_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the model server exited with code {self.process.returncode} before passing its ping: "
                    + tail_text(self.log_path, 15)
                )
            if self.ping():
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"the model server did not pass its ping within {ping_timeout:.0f} s: " + tail_text(self.log_path, 15)
        )

    def ping(self) -> bool:
        """Whether ``GET /ping`` answers 200 within 2 s (SageMaker's ping limit)."""
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2.0) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Stop the server process (idempotent)."""
        if self.process is not None:
            stop(self.process, grace=5.0)
