"""Exact package versions for runtimes the kit installs into (Glue's ``--additional-python-modules``).

``requirements.lock`` is the single source of truth: the Glue job gets the very versions that the
local runs and the tests use, so a Beam pipeline that passes here behaves the same on Glue.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = PROJECT_ROOT / "requirements.lock"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?$")


class PinError(LookupError):
    """A package has no exact pin in the lock file."""


def normalize(name: str) -> str:
    """Return a distribution name in PEP 503 normal form (``Apache_Beam`` -> ``apache-beam``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def locked_versions(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """Return ``{normalized name: version}`` for every ``name==version`` line of a lock file.

    Raises:
        PinError: If the lock file is missing.
    """
    try:
        text = lock_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PinError(f"lock file {lock_file} not found; run `make lock`") from None
    versions: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            versions[normalize(match.group(1))] = match.group(2)
    return versions


def pinned(requirement: str, lock_file: Path = LOCK_FILE) -> str:
    """Return ``requirement`` (a name with optional extras) pinned to its locked version.

    Args:
        requirement: For example ``apache-beam[dataframe]``.
        lock_file: The lock file to read.

    Returns:
        For example ``apache-beam[dataframe]==2.77.0``.

    Raises:
        PinError: If the requirement is malformed or not in the lock file.
    """
    match = _REQUIREMENT.match(requirement.strip())
    if not match:
        raise PinError(f"{requirement!r} is not a plain distribution name with optional [extras]")
    name, extras = match.group(1), match.group(2) or ""
    version = locked_versions(lock_file).get(normalize(name))
    if version is None:
        raise PinError(f"{name} is not pinned in {lock_file.name}; add it to pyproject.toml and run `make lock`")
    return f"{name}{extras}=={version}"


def glue_python_modules(requirements: tuple[str, ...], lock_file: Path = LOCK_FILE) -> str:
    """Return the comma-separated ``--additional-python-modules`` value for ``requirements``."""
    return ",".join(pinned(r, lock_file) for r in requirements)
