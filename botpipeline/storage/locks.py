"""Writer locks for the lake: one writer per partition, one committer of the manifest at a time.

On a local (or NFS-with-locking) folder a lock is ``fcntl.flock`` on a small file: the kernel
frees it the moment its process dies, so a killed run never leaves a stale lock. Object stores
have no locks; there a lock is a *lease*: an object created only if absent (S3's conditional
``PUT`` with ``If-None-Match: *``), naming its holder and an expiry, renewed by a background
thread while held. A killed holder's lease lapses after ``ttl`` seconds and is then taken over
with a conditional overwrite (``If-Match`` on the lapsed lease's ETag), so two takers never both
win.

Both kinds wait up to ``wait`` seconds, then refuse with :class:`LockBusy`, which names the
holder (run, host, pid, since when).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_WAIT_SECONDS = float(os.environ.get("BOTPIPELINE_LOCK_WAIT_SECONDS", "900"))
LEASE_TTL_SECONDS = 120.0


class LockBusy(RuntimeError):
    """Another writer holds the lock and did not let go in time."""


def holder_info(holder: str | None) -> dict:
    return {"holder": holder or "", "host": socket.gethostname(), "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _describe(info: dict | None) -> str:
    if not info:
        return "another writer"
    who = f"run {info['holder']}" if info.get("holder") else "a writer"
    return f"{who} (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"


@contextmanager
def local_lock(path: Path, what: str, *, wait: float = DEFAULT_WAIT_SECONDS,
               holder: str | None = None, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{what} is being written by {_describe(_read_info(path))}; "
                                   f"gave up after {wait:.0f}s") from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder_info(holder)).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_info(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None


class _S3Lease:
    """A lease object on S3 (or an S3-compatible store) through boto3's conditional writes."""

    def __init__(self, fs, path: str, what: str, holder: str | None, ttl: float):
        self.client = _s3_client(fs)
        self.bucket, _, self.key = path.partition("/")
        self.what, self.holder, self.ttl = what, holder, ttl
        self.etag: str | None = None

    def _body(self) -> bytes:
        info = holder_info(self.holder)
        info["expires"] = time.time() + self.ttl
        return json.dumps(info).encode()

    def try_take(self) -> dict | None:
        """Take the lease; None when taken, else the current holder's info."""
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                            IfNoneMatch="*")
            self.etag = answer["ETag"]
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "412",
                                                     "ConditionalRequestConflict"):
                raise
        try:
            current = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError:
            return {}  # released between the two calls: try again
        info = json.loads(current["Body"].read() or b"{}")
        if info.get("expires", 0) > time.time():
            return info
        try:  # lapsed: take it over, unless someone else just did
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                            IfMatch=current["ETag"])
            self.etag = answer["ETag"]
            return None
        except ClientError:
            return info

    def renew(self) -> None:
        answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                        IfMatch=self.etag)
        self.etag = answer["ETag"]

    def release(self) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key)


def _s3_client(fs):
    """A boto3 client with the same endpoint and credentials as the s3fs filesystem."""
    import boto3

    kwargs = {}
    endpoint = (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url") \
        or getattr(fs, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if getattr(fs, "key", None):
        kwargs.update(aws_access_key_id=fs.key, aws_secret_access_key=fs.secret)
    return boto3.client("s3", **kwargs)


@contextmanager
def lease_lock(fs, path: str, what: str, *, wait: float = DEFAULT_WAIT_SECONDS,
               holder: str | None = None, ttl: float = LEASE_TTL_SECONDS,
               poll: float = 0.2) -> Iterator[None]:
    lease = _S3Lease(fs, path, what, holder, ttl)
    deadline = time.monotonic() + wait
    while (info := lease.try_take()) is not None:
        if time.monotonic() >= deadline:
            raise LockBusy(f"{what} is being written by {_describe(info)}; gave up after "
                           f"{wait:.0f}s (a lapsed lease is taken over after {ttl:.0f}s)")
        time.sleep(poll)
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            lease.renew()

    renewer = threading.Thread(target=keep_alive, daemon=True, name=f"lease {path}")
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        lease.release()


def lake_lock(fs, path: str, what: str, **kwargs) -> contextmanager:
    """The right lock for the filesystem ``fs`` holding ``path``."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return local_lock(Path(path), what, **kwargs)
    if protocol in ("s3", "s3a"):
        return lease_lock(fs, path, what, **kwargs)
    raise NotImplementedError(f"no writer lock for {protocol}:// lakes (local folders and "
                              f"S3-compatible stores are supported)")
