"""Install LocalStack community and the kit's plugin into their own Python 3.13 virtualenv.

Both steps are idempotent: a stamp records what was installed, so ``mlkit local up`` only pays for an
install the first time, when the pins change, or when the plugin's files change.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mlkit.local.layout import (
    LOCALSTACK_PINS,
    LOCALSTACK_PYTHON,
    LOCALSTACK_REQUIREMENT,
    PLUGIN_DIR,
    Layout,
)


class InstallError(RuntimeError):
    """LocalStack or its plugin could not be installed; the message says what to do."""


def find_python313() -> Path:
    """Find a working Python 3.13 interpreter for LocalStack's virtualenv.

    Looks at ``MLKIT_PYTHON313``, then ``python3.13`` on ``PATH``, then pyenv's versions folder (a pyenv
    shim exists even when 3.13 is not the selected version, and then it fails to run).

    Returns:
        The interpreter's path.

    Raises:
        InstallError: With instructions for getting Python 3.13 when none works.
    """
    candidates: list[str] = []
    if explicit := os.environ.get("MLKIT_PYTHON313"):
        candidates.append(explicit)
    if on_path := shutil.which("python3.13"):
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"), reverse=True)
    candidates += ["/usr/bin/python3.13", "/usr/local/bin/python3.13"]
    wanted = ".".join(map(str, LOCALSTACK_PYTHON))
    for candidate in candidates:
        if _python_version(candidate) == wanted:
            return Path(candidate)
    raise InstallError(
        f"LocalStack 4.13.1 needs Python {wanted} (its Step Functions provider fails to load on older Pythons), "
        f"and none was found (tried: {', '.join(candidates) or 'python3.13 on PATH'}).\n"
        f"Get one with `pyenv install {wanted}` (or your OS package manager, e.g. `apt-get install python{wanted}`), "
        f"or point MLKIT_PYTHON313 at an existing python{wanted} interpreter."
    )


def ensure_localstack(layout: Layout, *, log: bool = True) -> bool:
    """Create LocalStack's virtualenv and install the pinned LocalStack into it, unless already done.

    Args:
        layout: The project's local-mode paths.
        log: Print what is being installed and how long it took.

    Returns:
        Whether anything was installed.

    Raises:
        InstallError: If Python 3.13 is missing or an install command fails.
    """
    wanted = "\n".join((LOCALSTACK_REQUIREMENT, *LOCALSTACK_PINS))
    if layout.venv_python.exists() and _read(layout.install_stamp) == wanted:
        return False
    started = time.perf_counter()
    if not layout.venv_python.exists():
        python = find_python313()
        _say(log, f"creating LocalStack's virtualenv {layout.venv} ({python})")
        _run([str(python), "-m", "venv", str(layout.venv)], "create LocalStack's virtualenv")
    _say(log, f"installing {LOCALSTACK_REQUIREMENT} into {layout.venv} (first use only)")
    _install(layout, [LOCALSTACK_REQUIREMENT])
    # One command for all four: pip/uv then resolve them together and keep cryptography below 46.
    _install(layout, list(LOCALSTACK_PINS))
    layout.install_stamp.write_text(wanted, encoding="utf-8")
    _say(log, f"LocalStack installed in {time.perf_counter() - started:.0f} s")
    return True


def ensure_plugin(layout: Layout, *, log: bool = True) -> bool:
    """Install the kit's LocalStack plugin (editable) and drop plux's cache whenever the plugin changed.

    plux caches the entry-point index keyed on coarse file times, so a changed plugin can go unseen until
    its cache folder is deleted (ARCHITECTURE, plux cache).

    Returns:
        Whether the plugin was (re)installed; LocalStack must then be restarted to see it.
    """
    fingerprint = plugin_fingerprint()
    if _read(layout.plugin_stamp) == fingerprint:
        return False
    _say(log, f"installing the kit's LocalStack plugin ({PLUGIN_DIR.relative_to(layout.project_root)}, editable)")
    _install(layout, ["--no-deps", "-e", str(PLUGIN_DIR)])
    shutil.rmtree(layout.plux_cache, ignore_errors=True)
    layout.plugin_stamp.write_text(fingerprint, encoding="utf-8")
    return True


def plugin_fingerprint() -> str:
    """Hash the plugin's files (names and contents) so that any change is noticed."""
    digest = hashlib.sha256()
    for path in sorted(PLUGIN_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(str(path.relative_to(PLUGIN_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _install(layout: Layout, requirements: Sequence[str]) -> None:
    uv = _find_uv()
    if uv:
        # --compile-bytecode: PYTHONDONTWRITEBYTECODE=1 on these machines would otherwise make every start
        # of LocalStack recompile its modules.
        command = [str(uv), "pip", "install", "--python", str(layout.venv_python), "--compile-bytecode", "--quiet"]
    else:
        command = [str(layout.venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*command, *requirements], f"install {' '.join(requirements)}")


def _find_uv() -> Path | None:
    beside_python = Path(sys.executable).parent / "uv"
    if beside_python.exists():
        return beside_python
    found = shutil.which("uv")
    return Path(found) if found else None


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise InstallError(f"could not {what} (exit {result.returncode}):\n" + "\n".join(output))


def _python_version(executable: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _say(enabled: bool, line: str) -> None:
    if enabled:
        print(line, flush=True)
