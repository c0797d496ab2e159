"""Object stores on loopback for the RECORDINGS_URL tests: moto's S3 server, gcp-storage-emulator
for Google Cloud Storage, and a plain folder for file://. Each can be created *down* (nothing
listening on its port, or the folder blocked) and brought up mid-test, and lists what it holds.

Clients reach the emulators through the standard variables the gateway documents:
AWS_ENDPOINT_URL (boto3) and STORAGE_EMULATOR_HOST (google-cloud-storage).
"""

from __future__ import annotations

import shutil
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BUCKET = "calls-archive"
PREFIX = "recordings/test"


def free_port() -> int:
    """A loopback port nothing listens on (so far): connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StoreEmulator:
    """One store for one test; `url` is the RECORDINGS_URL (with PREFIX)."""

    scheme: str
    url: str

    def up(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop whatever runs (end of test)."""

    def objects(self) -> dict[str, bytes]:
        """Every object under PREFIX: key → bytes."""
        raise NotImplementedError


class S3Emulator(StoreEmulator):
    scheme = "s3"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.url = f"s3://{BUCKET}/{PREFIX}"
        self._server: Any = None
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def _client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.endpoint)

    def up(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        # moto keeps its buckets per process, not per server: start from an empty store.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()
        self._client().create_bucket(Bucket=BUCKET)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def objects(self) -> dict[str, bytes]:
        client = self._client()
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/")
        keys = [item["Key"] for item in listing.get("Contents", [])]
        return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


class GcsEmulator(StoreEmulator):
    scheme = "gs"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.url = f"gs://{BUCKET}/{PREFIX}"
        self._server: Any = None
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", self.endpoint)
        monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)

    def up(self) -> None:
        from gcp_storage_emulator.server import create_server

        self._server = create_server("127.0.0.1", self.port, in_memory=True, default_bucket=BUCKET)
        self._server.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def objects(self) -> dict[str, bytes]:
        from google.cloud import storage

        client = storage.Client(project="test")  # anonymous: STORAGE_EMULATOR_HOST is set
        return {
            blob.name: blob.download_as_bytes()
            for blob in client.list_blobs(BUCKET, prefix=PREFIX + "/")
        }


class FolderStore(StoreEmulator):
    """file://: 'down' is a regular file where the folder should be (mkdir fails, even as
    root)."""

    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}/{PREFIX}"
        root.parent.mkdir(parents=True, exist_ok=True)
        root.write_text("not a folder")

    def up(self) -> None:
        if self.root.is_file():
            self.root.unlink()
        self.root.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        if self.root.is_dir():
            shutil.rmtree(self.root)

    def objects(self) -> dict[str, bytes]:
        base = self.root / PREFIX
        if not base.is_dir():
            return {}
        return {
            f"{PREFIX}/{path.relative_to(base).as_posix()}": path.read_bytes()
            for path in sorted(base.rglob("*"))
            if path.is_file()
        }


def make_store(scheme: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StoreEmulator:
    """A store of `scheme`, still down."""
    if scheme == "s3":
        return S3Emulator(monkeypatch)
    if scheme == "gs":
        return GcsEmulator(monkeypatch)
    return FolderStore(tmp_path / "store")
