"""Start, stop and inspect LocalStack community as a plain host process (no Docker).

The process is started with ``python -m localstack.runtime.main`` from LocalStack's own virtualenv and the
environment ARCHITECTURE prescribes. Its PID and log stay under ``.localstack/``; every command is safe to
repeat: ``up`` on a running LocalStack reports it, ``down`` on a stopped one does nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localstack_client import config as localstack_config

from mlkit.local.install import ensure_localstack, ensure_plugin
from mlkit.local.layout import Layout, gateway_address

#: Services the kit's plugin adds; ``status`` reports them to show the plugin loaded.
PLUGIN_SERVICES = ("sagemaker", "sagemaker-runtime", "glue", "application-autoscaling")
_MAIN_MODULE = "localstack.runtime.main"
# Popen objects of LocalStack processes started by this Python process, so that ``down`` can reap them
# (a test session starts and stops LocalStack in one process).
_children: dict[int, subprocess.Popen[bytes]] = {}


class LocalStackError(RuntimeError):
    """LocalStack could not be started or reached; the message says why and what to do."""


@dataclass
class Status:
    """What ``mlkit local status`` reports.

    Attributes:
        running: A LocalStack process started from this project is alive.
        pid: Its PID, when running.
        healthy: Its gateway answers ``/_localstack/health``.
        endpoint: The gateway URL clients use.
        services: Service name to state, from the health report.
        version: LocalStack's version, from the health report.
    """

    running: bool
    pid: int | None
    healthy: bool
    endpoint: str
    services: dict[str, str] = field(default_factory=dict)
    version: str = ""


def endpoint_url() -> str:
    """Return the gateway URL, resolved by ``localstack-client`` like every client of the kit."""
    host, port = gateway_address()
    url = localstack_config.get_service_endpoint("edge", localstack_host=f"{host}:{port}")
    return str(url)


def localstack_env(layout: Layout) -> dict[str, str]:
    """Build the environment LocalStack runs with.

    Args:
        layout: The project's local-mode paths.

    Returns:
        The current environment without the project's virtualenv settings, plus LocalStack's and the
        plugin's variables.
    """
    host, port = gateway_address()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(
        {
            # Otherwise LocalStack takes this machine for its container and writes to system folders.
            "OVERRIDE_IN_DOCKER": "0",
            "GATEWAY_LISTEN": f"{host}:{port}",
            # The default server binds 0.0.0.0 whatever GATEWAY_LISTEN says.
            "GATEWAY_SERVER": "hypercorn",
            "LOCALSTACK_HOST": f"{host}:{port}",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "FILESYSTEM_ROOT": str(layout.state_dir),
            # plux keeps its entry-point cache here; project-local so that clearing it is ours to do.
            "XDG_CACHE_HOME": str(layout.cache_dir),
            # For the plugin: the Python 3.11 that runs Glue scripts, training jobs and endpoint servers
            # (MLKIT_PYTHON in the caller's environment wins, e.g. a wrapper in tests).
            "MLKIT_PYTHON": os.environ.get("MLKIT_PYTHON") or str(layout.project_python),
            "MLKIT_PROJECT_ROOT": str(layout.project_root),
            "MLKIT_WORK_DIR": str(layout.work_dir),
        }
    )
    return env


def status(layout: Layout) -> Status:
    """Report whether this project's LocalStack runs and what its health endpoint says."""
    pid = _alive_pid(layout)
    health = _health()
    services = {name: str(state) for name, state in (health or {}).get("services", {}).items()}
    return Status(
        running=pid is not None,
        pid=pid,
        healthy=pid is not None and health is not None,
        endpoint=endpoint_url(),
        services=services,
        version=str((health or {}).get("version", "")),
    )


def up(
    layout: Layout,
    *,
    timeout: float = 120.0,
    progress: Callable[[str], None] | None = print,
) -> Status:
    """Install what is missing, start LocalStack and wait until it is healthy.

    Args:
        layout: The project's local-mode paths.
        timeout: Seconds to wait for ``/_localstack/health``.
        progress: Called with progress lines; ``None`` for silence.

    Returns:
        The status of the running LocalStack.

    Raises:
        LocalStackError: The port is held by another process, or LocalStack exited or stayed unhealthy
            (the message carries the tail of its log).
        mlkit.local.install.InstallError: Python 3.13 is missing or an install failed.
    """
    say = progress or (lambda _line: None)
    log = progress is not None
    layout.home.mkdir(parents=True, exist_ok=True)
    ensure_localstack(layout, log=log)
    plugin_changed = ensure_plugin(layout, log=log)

    current = status(layout)
    if current.running and not plugin_changed:
        if not current.healthy:
            _wait_healthy(layout, current.pid or 0, timeout, say, log_offset=0)
            current = status(layout)
        say(f"LocalStack already running (pid {current.pid}) at {current.endpoint}")
        return current
    if current.running:
        say("the kit's plugin changed: restarting LocalStack so that it loads the new version")
        down(layout, progress=progress)

    host, port = gateway_address()
    holder = _port_in_use(host, port)
    if holder is not None:
        raise LocalStackError(
            f"cannot start LocalStack: {host}:{port} is already in use{holder}. Stop that process, or pick "
            f"another address with LOCALSTACK_HOST=127.0.0.1:<port>."
        )

    # This edition keeps no state across restarts, so the previous process's job and endpoint folders
    # describe resources that no longer exist.
    shutil.rmtree(layout.work_dir, ignore_errors=True)
    for folder in (layout.state_dir, layout.cache_dir, layout.work_dir):
        folder.mkdir(parents=True, exist_ok=True)
    offset = layout.log_file.stat().st_size if layout.log_file.exists() else 0
    started = time.perf_counter()
    with layout.log_file.open("ab") as log_stream:
        log_stream.write(f"\n=== mlkit local up {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        log_stream.flush()
        process = subprocess.Popen(
            [str(layout.venv_python), "-m", _MAIN_MODULE],
            cwd=layout.home,
            env=localstack_env(layout),
            stdin=subprocess.DEVNULL,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            # Its own process group: ``down`` can then end LocalStack together with the job and endpoint
            # subprocesses the plugin started, and a Ctrl-C in this terminal does not reach it.
            start_new_session=True,
        )
    _children[process.pid] = process
    layout.pid_file.write_text(str(process.pid), encoding="utf-8")
    say(f"starting LocalStack (pid {process.pid}) at {endpoint_url()}, log {layout.log_file}")
    _wait_healthy(layout, process.pid, timeout, say, log_offset=offset)
    say(f"LocalStack healthy after {time.perf_counter() - started:.1f} s")
    return status(layout)


def down(
    layout: Layout,
    *,
    timeout: float = 20.0,
    progress: Callable[[str], None] | None = print,
) -> bool:
    """Stop this project's LocalStack: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL its group.

    Returns:
        Whether a running LocalStack was stopped (``False`` when none was running).
    """
    say = progress or (lambda _line: None)
    pid = _alive_pid(layout)
    if pid is None:
        layout.pid_file.unlink(missing_ok=True)
        say("LocalStack is not running")
        return False
    started = time.perf_counter()
    say(f"stopping LocalStack (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout):
        # Seen once: LocalStack hanging on SIGTERM. Only our own PID's group is killed.
        say(f"LocalStack did not stop within {timeout:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)
    # Job and endpoint subprocesses the plugin could not stop on its way out share the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    layout.pid_file.unlink(missing_ok=True)
    say(f"LocalStack stopped in {time.perf_counter() - started:.1f} s")
    return True


def tail(path: Path, lines: int, *, offset: int = 0) -> str:
    """Return the last ``lines`` lines of ``path`` from byte ``offset`` on (empty if it does not exist)."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def port_holder(port: int) -> str | None:
    """Name the process listening on TCP ``port`` (``"pid 123 (python ...)"``), or ``None`` if unknown.

    Reads ``/proc`` (Linux only): the socket inode from ``/proc/net/tcp*``, then the process holding it.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as rows:
            for row in list(rows)[1:]:
                parts = row.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name} ({command.strip()[:120]})"
    return None


def _port_in_use(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((host, port)) != 0:
            return None
    holder = port_holder(port)
    return f" by {holder}" if holder else ""


def _wait_healthy(layout: Layout, pid: int, timeout: float, say: Callable[[str], None], *, log_offset: int) -> None:
    deadline = time.monotonic() + timeout
    next_note = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not _is_alive(pid):
            layout.pid_file.unlink(missing_ok=True)
            raise LocalStackError(
                f"LocalStack exited during start-up. Last lines of {layout.log_file}:\n"
                + tail(layout.log_file, 40, offset=log_offset)
            )
        if _health() is not None:
            return
        if time.monotonic() >= next_note:
            say(f"  waiting for LocalStack to report healthy ({timeout - (deadline - time.monotonic()):.0f} s)")
            next_note += 5.0
        time.sleep(0.25)
    raise LocalStackError(
        f"LocalStack (pid {pid}) was not healthy after {timeout:.0f} s; it is left running for inspection "
        f"(`mlkit local down` stops it). Last lines of {layout.log_file}:\n"
        + tail(layout.log_file, 40, offset=log_offset)
    )


def _health() -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{endpoint_url()}/_localstack/health", timeout=2.0) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _alive_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pid_file.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _is_alive(pid):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc (not Linux): trust the PID file
    # A recycled PID belongs to someone else: never signal it.
    return pid if _MAIN_MODULE.encode() in command else None


def _is_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    child = _children.get(pid)
    if child is not None:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        _children.pop(pid, None)
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_alive(pid):
            return True
        time.sleep(0.2)
    return not _is_alive(pid)
