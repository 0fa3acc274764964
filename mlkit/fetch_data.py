"""``mlkit fetch-data``: download the AI4I 2020 CSV from the UCI archive and verify it."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

UCI_URL = "https://archive.ics.uci.edu/static/public/601/ai4i+2020+predictive+maintenance+dataset.zip"
CSV_NAME = "ai4i2020.csv"
SHA256 = "ec4ed737b27c4e65730e3b875626ddb4db005d79733f0fc1f59d72db467cd670"


class FetchError(RuntimeError):
    """The dataset could not be downloaded or failed verification."""


def sha256_of(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def extract_csv(payload: bytes) -> bytes:
    """Return the CSV bytes from the archive's zip (or ``payload`` itself if it is not a zip)."""
    if not zipfile.is_zipfile(io.BytesIO(payload)):
        return payload
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = [n for n in archive.namelist() if n.endswith(CSV_NAME)]
        if not names:
            raise FetchError(f"the downloaded archive has no {CSV_NAME} (found: {archive.namelist()})")
        return archive.read(names[0])


def fetch(dest: Path, *, url: str = UCI_URL, timeout: float = 30.0) -> Path:
    """Download the dataset to ``dest`` unless a verified copy is already there.

    Args:
        dest: Where to write ``ai4i2020.csv``.
        url: Archive URL (a zip holding the CSV, or the CSV itself).
        timeout: Seconds to wait for the server.

    Returns:
        ``dest``.

    Raises:
        FetchError: When there is no network, the server fails, or the checksum does not match.
    """
    if dest.is_file() and sha256_of(dest.read_bytes()) == SHA256:
        return dest
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:  # reached the server: it is not the network
        raise FetchError(
            f"cannot download {url}: the server answered {error.code} {error.reason}; the archive may have moved. "
            f"Download {CSV_NAME} from https://archive.ics.uci.edu/dataset/601 and pass it with --data."
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(
            f"cannot download {url}: {reason}. This machine seems to have no internet access; "
            f"copy {CSV_NAME} here by hand and pass it with --data (or DATA=... for make)."
        ) from None
    data = extract_csv(payload)
    digest = sha256_of(data)
    if digest != SHA256:
        raise FetchError(f"checksum mismatch for {url}: got sha256 {digest}, expected {SHA256}; not saved")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest
