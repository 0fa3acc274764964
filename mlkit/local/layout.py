"""Where local mode keeps its files, and the address LocalStack listens on.

Everything lives under ``<project>/.localstack/`` (git-ignored), so a clone never writes outside itself:
LocalStack's state (``FILESYSTEM_ROOT``), its plux entry-point cache (``XDG_CACHE_HOME``), its log and PID,
and the working folders of the jobs and endpoints the plugin runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: LocalStack community release the kit runs: the last one that needs no account token.
LOCALSTACK_VERSION = "4.13.1"
LOCALSTACK_REQUIREMENT = f"localstack-core[runtime]=={LOCALSTACK_VERSION}"
#: Installed together in one command after LocalStack: installing any of them alone drags cryptography up
#: and breaks pyopenssl (ARCHITECTURE, local mode).
LOCALSTACK_PINS = ("cbor2<6", "cryptography==45.0.7", "pyopenssl==25.1.0", "service_identity")
#: LocalStack 4.13.1's Step Functions and Lambda providers evaluate ``Lock | None`` at import time.
LOCALSTACK_PYTHON = (3, 13)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
PLUGIN_DIR = PROJECT_ROOT / "mlkit" / "localstack_plugin"


class LayoutError(ValueError):
    """A local-mode setting (``LOCALSTACK_HOST``) is malformed."""


def gateway_address() -> tuple[str, int]:
    """Return the ``(host, port)`` LocalStack listens on.

    ``LOCALSTACK_HOST`` (``host:port``) overrides the default ``127.0.0.1:4566``; ``localstack-client`` reads
    the same variable, so the CLI, the tests and the server always agree on one address.
    """
    value = os.environ.get("LOCALSTACK_HOST", "").strip()
    if not value:
        return DEFAULT_HOST, DEFAULT_PORT
    host, _, port = value.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise LayoutError(f"LOCALSTACK_HOST must be host:port, such as 127.0.0.1:4566; got {value!r}")
    return host or DEFAULT_HOST, int(port) if port else DEFAULT_PORT


@dataclass(frozen=True)
class Layout:
    """Paths of one project's local mode.

    Attributes:
        project_root: The clone (holds ``.venv/`` and ``.localstack/``).
    """

    project_root: Path = PROJECT_ROOT

    @property
    def home(self) -> Path:
        """``.localstack/``: everything local mode writes."""
        return self.project_root / ".localstack"

    @property
    def venv(self) -> Path:
        """LocalStack's own Python 3.13 virtualenv."""
        return self.home / "venv"

    @property
    def venv_python(self) -> Path:
        """The interpreter of :attr:`venv`."""
        return self.venv / "bin" / "python"

    @property
    def install_stamp(self) -> Path:
        """Records which LocalStack requirements the venv holds (reinstalled when they change)."""
        return self.venv / ".mlkit-localstack"

    @property
    def plugin_stamp(self) -> Path:
        """Fingerprint of the plugin files last installed (plux cache cleared when it changes)."""
        return self.home / "plugin.fingerprint"

    @property
    def state_dir(self) -> Path:
        """LocalStack's ``FILESYSTEM_ROOT``."""
        return self.home / "state"

    @property
    def cache_dir(self) -> Path:
        """LocalStack's ``XDG_CACHE_HOME``; plux keeps its entry-point index under ``plux/``."""
        return self.home / "cache"

    @property
    def plux_cache(self) -> Path:
        """Plux's entry-point index, stale after the plugin's entry points change."""
        return self.cache_dir / "plux"

    @property
    def work_dir(self) -> Path:
        """Working folders of the Glue runs, training jobs and endpoint servers the plugin starts."""
        return self.home / "work"

    @property
    def log_file(self) -> Path:
        """LocalStack's stdout and stderr, plus the plugin's logging."""
        return self.home / "localstack.log"

    @property
    def pid_file(self) -> Path:
        """PID of the LocalStack process this project started."""
        return self.home / "localstack.pid"

    @property
    def project_python(self) -> Path:
        """The project's Python 3.11 (TensorFlow, Beam) that runs jobs and endpoints for the plugin."""
        venv_python = self.project_root / ".venv" / "bin" / "python"
        return venv_python if venv_python.exists() else Path(sys.executable)
