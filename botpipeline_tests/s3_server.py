"""A real S3 API on loopback for tests and benchmarks: moto's threaded server on a free port,
one bucket, and the standard AWS variables pointing at it (clients built afterwards, in this
process or in processes it starts, find it through ``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

import os
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
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    info = S3Server(f"http://127.0.0.1:{port}", bucket)
    saved = {k: os.environ.get(k) for k in info.env()}
    try:
        for key, value in info.env().items():
            if value:
                os.environ[key] = value
            else:
                os.environ.pop(key, None)
        import boto3

        boto3.client("s3", endpoint_url=info.endpoint_url).create_bucket(Bucket=bucket)
        yield info
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A loopback S3 server with one bucket for the module's tests."""
    try:
        import moto.server  # noqa: F401
    except ImportError as error:
        unavailable(f"moto[server] is not installed ({error}); pip install -e '.[test]'")
    with s3_server() as server:
        yield server
