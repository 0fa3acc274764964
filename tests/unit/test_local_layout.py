"""Where local mode finds LocalStack: ``LOCALSTACK_HOST``, the one setting the CLI, tests and clients share."""

from __future__ import annotations

import pytest

from mlkit.cli import main
from mlkit.local.layout import DEFAULT_HOST, DEFAULT_PORT, LayoutError, gateway_address

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", (DEFAULT_HOST, DEFAULT_PORT)),
        ("localhost:4599", ("localhost", 4599)),
        ("10.0.0.2", ("10.0.0.2", DEFAULT_PORT)),
    ],
)
def test_localstack_host_sets_the_address(
    value: str, expected: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSTACK_HOST", value)
    assert gateway_address() == expected


@pytest.mark.parametrize("value", ["127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:70000"])
def test_a_malformed_localstack_host_is_one_clear_line(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCALSTACK_HOST", value)
    with pytest.raises(LayoutError, match="LOCALSTACK_HOST must be host:port"):
        gateway_address()

    assert main(["local", "status"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"mlkit local status: LOCALSTACK_HOST must be host:port, such as 127.0.0.1:4566; got {value!r}"
    )
