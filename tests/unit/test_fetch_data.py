"""``mlkit fetch-data``: checksum verification and a plain message without a network."""

from __future__ import annotations

import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from mlkit.fetch_data import SHA256, FetchError, fetch

pytestmark = pytest.mark.unit


def _zip_of(csv: Path, tmp_path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(csv, "ai4i2020.csv")
    path = tmp_path / "archive.zip"
    path.write_bytes(buffer.getvalue())
    return path


def test_fetch_extracts_and_verifies_the_archive(ai4i_csv: Path, tmp_path: Path) -> None:
    dest = fetch(tmp_path / "out" / "ai4i2020.csv", url=_zip_of(ai4i_csv, tmp_path).as_uri())
    assert dest.read_bytes() == ai4i_csv.read_bytes()


def test_fetch_rejects_a_wrong_checksum(tmp_path: Path) -> None:
    fake = tmp_path / "fake.csv"
    fake.write_text("UDI\n1\n")
    with pytest.raises(FetchError, match=f"checksum mismatch.*expected {SHA256}"):
        fetch(tmp_path / "out.csv", url=fake.as_uri())
    assert not (tmp_path / "out.csv").exists()


def test_fetch_without_network_says_so(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused, like a closed network
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="no internet access"):
        fetch(tmp_path / "out.csv", url=f"http://127.0.0.1:{port}/ai4i.zip", timeout=2)


def test_fetch_from_a_server_that_refuses_says_so(tmp_path: Path) -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with pytest.raises(FetchError, match="the server answered 404") as failure:
                fetch(tmp_path / "out.csv", url=f"http://127.0.0.1:{server.server_port}/ai4i.zip", timeout=5)
        finally:
            server.shutdown()
    assert "no internet access" not in str(failure.value)
