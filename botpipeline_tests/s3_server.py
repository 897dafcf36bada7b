"""A real S3 API on loopback for tests and benchmarks: moto's server in a process of its own on
a free port, one bucket, and the standard AWS variables pointing at it (clients built
afterwards, in this process or in processes it starts, find it through ``AWS_ENDPOINT_URL``).

Its own process, not a thread: a server thread would share this interpreter's lock with
whatever the caller runs here (a Dask scheduler, a sampler), and a backfill's thousands of small
requests then queue behind them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from botpipeline_tests.postgres_server import free_port, unavailable


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ENDPOINT_URL_S3": self.endpoint_url,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                # moto needs no session token; one left in the environment would be sent.
                "AWS_SESSION_TOKEN": "", "AWS_SECURITY_TOKEN": ""}

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix.strip('/')}"


@contextmanager
def s3_server(bucket: str = "botpipeline-test") -> Iterator[S3Server]:
    """Start moto's S3 server on loopback, create ``bucket``, set the AWS variables in
    ``os.environ`` while it runs (restoring them afterwards)."""
    import boto3

    port = free_port()
    # Its request log goes to a file: a pipe nobody reads would stall it once full.
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=log, stderr=subprocess.STDOUT)
    info = S3Server(f"http://127.0.0.1:{port}", bucket)
    saved = {k: os.environ.get(k) for k in info.env()}
    try:
        for key, value in info.env().items():
            if value:
                os.environ[key] = value
            else:
                os.environ.pop(key, None)
        client = boto3.client("s3", endpoint_url=info.endpoint_url)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=bucket)
                break
            except Exception:
                if server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"moto's S3 server exited ({server.returncode}): "
                                       f"{log.read().decode(errors='replace')[-2000:]}"
                                       ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server on port {port} did not answer in "
                                       f"60 s") from None
                time.sleep(0.2)
        yield info
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A loopback S3 server with one bucket for the module's tests."""
    try:
        import moto.server  # noqa: F401
    except ImportError as error:
        unavailable(f"moto[server] is not installed ({error}); pip install -e '.[test]'")
    with s3_server() as server:
        yield server
