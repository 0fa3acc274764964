"""`mlkit local up|down|status|logs`: idempotence, health, and the clear errors for a busy port or a failed start."""

from __future__ import annotations

import argparse
import os
import socket
import stat
from pathlib import Path

import pytest

from mlkit.local import control, install
from mlkit.local.cli import add_commands
from mlkit.local.layout import LOCALSTACK_PINS, LOCALSTACK_REQUIREMENT, Layout

pytestmark = pytest.mark.integration


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_up_twice_reuses_the_running_localstack(localstack: control.Status, capsys: pytest.CaptureFixture[str]) -> None:
    again = control.up(Layout())

    assert again.pid == localstack.pid
    assert again.healthy
    assert "already running" in capsys.readouterr().out


def test_status_reports_the_kit_services(localstack: control.Status, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["local", "status"]) == 0

    out = capsys.readouterr().out
    assert f"pid {localstack.pid}" in out
    for service in control.PLUGIN_SERVICES:
        assert f"{service} available" in out or f"{service} running" in out


def test_logs_prints_the_tail(localstack: control.Status, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["local", "logs", "-n", "5"]) == 0

    printed = [line.rstrip() for line in capsys.readouterr().out.rstrip("\n").splitlines()]
    assert len(printed) == 5
    # The log only grows, so the lines printed are five consecutive lines of it (its tail back then).
    log = [line.rstrip() for line in Layout().log_file.read_text(encoding="utf-8", errors="replace").splitlines()]
    assert any(log[i : i + 5] == printed for i in range(len(log) - 4))


def test_down_when_nothing_runs_is_a_no_op(tmp_path: Path) -> None:
    layout = Layout(project_root=tmp_path)

    assert control.down(layout, progress=None) is False
    assert control.down(layout, progress=None) is False


def test_busy_port_is_refused_naming_the_holder(
    localstack: control.Status, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = _fake_installed_layout(tmp_path, "exit 0")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        monkeypatch.setenv("LOCALSTACK_HOST", f"127.0.0.1:{holder.getsockname()[1]}")

        with pytest.raises(control.LocalStackError, match=r"already in use by pid \d+") as raised:
            control.up(layout, progress=None)

    assert str(os.getpid()) in str(raised.value)


def test_failed_start_shows_the_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = _fake_installed_layout(tmp_path, "echo 'boom: port config broken' >&2; exit 3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LOCALSTACK_HOST", f"127.0.0.1:{port}")

    with pytest.raises(control.LocalStackError, match="exited during start-up") as raised:
        control.up(layout, timeout=20, progress=None)

    assert "boom: port config broken" in str(raised.value)
    assert not layout.pid_file.exists()


def test_missing_python313_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("MLKIT_PYTHON313", str(tmp_path / "nothing"))
    monkeypatch.setattr(install, "_python_version", lambda executable: None)

    with pytest.raises(install.InstallError, match=r"pyenv install 3\.13"):
        install.find_python313()


def _fake_installed_layout(root: Path, script: str) -> Layout:
    """A project whose 'LocalStack' is a shell script, with stamps saying that everything is installed."""
    layout = Layout(project_root=root)
    python = layout.venv_python
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    layout.install_stamp.write_text("\n".join((LOCALSTACK_REQUIREMENT, *LOCALSTACK_PINS)))
    layout.plugin_stamp.write_text(install.plugin_fingerprint())
    return layout
