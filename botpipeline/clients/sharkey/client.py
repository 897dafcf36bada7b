"""A Sharkey/Misskey API client on ``requests``.

Every call is ``POST /api/<endpoint>`` with the token in the ``Authorization`` header. The
client paces each (token, endpoint) pair on its own: the server meters every user separately,
so one account waiting out its limit never holds back another. Idempotent calls are retried on
5xx, timeouts and dropped connections; a non-idempotent call (``notes/create``) that fails in
transit raises :class:`Ambiguous` instead, because the server may have applied it.

Tokens never reach logs or exceptions: errors name the endpoint and an owner label only.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from botpipeline.clients.sharkey.errors import (Ambiguous, RateLimited, ServerError,
                                                SharkeyError, Unreachable, error_from_body)
from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, Limit, limit_for

log = logging.getLogger(__name__)

NON_IDEMPOTENT = {"notes/create", "admin/accounts/create"}


def server_label(url: str) -> str:
    """``scheme://host[:port][/path]`` without credentials, query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("the Sharkey URL must look like https://host[:port]")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def server_slug(server: str) -> str:
    """A file-name-safe form of a server label (``127.0.0.1_8080``, ``sandbox.example.org``):
    the token store and the ledger are kept per server under it."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", server.split("://", 1)[-1]).strip("_")


def fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()[:12] if token else "anonymous"


class Pacer:
    """When each (token, endpoint) may call next, learned from the server's answers."""

    def __init__(self, limits: Mapping[str, Limit] = SHARKEY_LIMITS):
        self._next: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.limits = limits

    def wait_for(self, token: str | None, endpoint: str) -> float:
        with self._lock:
            return max(0.0, self._next.get((fingerprint(token), endpoint), 0.0)
                       - time.monotonic())

    def hold(self, token: str | None, endpoint: str, seconds: float) -> None:
        key = (fingerprint(token), endpoint)
        with self._lock:
            self._next[key] = max(self._next.get(key, 0.0), time.monotonic() + seconds)

    def observe(self, token: str | None, endpoint: str, response: requests.Response) -> None:
        """A response said the bucket is full: wait one drain interval before the next call."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is not None and remaining.strip() == "0":
            interval = limit_for(endpoint, self.limits).interval_s
            clear = _float(response.headers.get("X-RateLimit-Clear"))
            self.hold(token, endpoint, min(interval, clear) if clear is not None else interval)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def retry_in(response: requests.Response, body: object) -> float:
    """Seconds a 429 asks for: X-RateLimit-Reset (ms precision), info, then Retry-After."""
    reset = _float(response.headers.get("X-RateLimit-Reset"))
    if reset is not None:
        return max(0.0, reset)
    info = body.get("error", {}).get("info") if isinstance(body, dict) else None
    if isinstance(info, dict):
        if isinstance(info.get("resetMs"), (int, float)):
            value = float(info["resetMs"])
            # Misskey sends an epoch in ms, Sharkey a duration in ms.
            return max(0.0, value / 1000 - time.time()) if value > 1e12 else value / 1000
        if isinstance(info.get("reset"), (int, float)):
            return max(0.0, float(info["reset"]) - time.time())
    after = _float(response.headers.get("Retry-After"))
    return max(0.0, after) if after is not None else 1.0


class SharkeyClient:
    """One server. ``admin_token`` is used when a call names no token."""

    def __init__(self, url: str, admin_token: str | None = None, *, verify: bool | str = True,
                 timeout: float = 30.0, max_retries: int = 6, backoff: float = 0.25,
                 limits: Mapping[str, Limit] = SHARKEY_LIMITS, pool_size: int = 64):
        self.server = server_label(url)
        self._admin_token = admin_token
        self.verify, self.timeout = verify, timeout
        self.max_retries, self.backoff = max_retries, backoff
        self.pacer = Pacer(limits)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.calls = 0

    def __repr__(self) -> str:
        return f"SharkeyClient({self.server!r})"

    def close(self) -> None:
        self.session.close()

    def call(self, endpoint: str, body: dict | None = None, *, token: str | None = None,
             files: dict | None = None, fields: dict | None = None, wait: bool = True,
             idempotent: bool | None = None) -> Any:
        """POST one call; the parsed JSON, or None for 204.

        ``token=None`` uses the admin token. ``wait=False`` raises :class:`RateLimited` instead
        of sleeping when the (token, endpoint) must wait, so a scheduler can do other work.
        """
        token = self._admin_token if token is None else token
        if idempotent is None:
            idempotent = endpoint not in NON_IDEMPOTENT
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.server}/api/{endpoint}"
        failures = 0
        while True:
            pause = self.pacer.wait_for(token, endpoint)
            if pause > 0:
                if not wait:
                    raise RateLimited(endpoint, pause, "paced: the bucket is full")
                time.sleep(pause)
            try:
                self.calls += 1
                if files is not None:
                    response = self.session.post(url, files=files, data=fields or {},
                                                 headers=headers, timeout=self.timeout,
                                                 verify=self.verify)
                else:
                    response = self.session.post(url, json=body or {}, headers=headers,
                                                 timeout=self.timeout, verify=self.verify)
            except requests.exceptions.SSLError:
                raise Unreachable(endpoint, f"TLS verification failed for {self.server}"
                                  ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                sent = not isinstance(exc, requests.exceptions.ConnectTimeout) and \
                    "NewConnectionError" not in repr(exc)
                if sent and not idempotent:
                    raise Ambiguous(endpoint, f"{type(exc).__name__} after sending") from None
                failures += 1
                if failures > self.max_retries:
                    raise Unreachable(endpoint, f"{self.server} did not answer after "
                                      f"{failures} tries ({type(exc).__name__})") from None
                self._backoff(endpoint, failures, type(exc).__name__)
                continue
            self.pacer.observe(token, endpoint, response)
            if response.status_code == 204:
                return None
            parsed = _json(response)
            if response.status_code < 300:
                return parsed
            error = error_from_body(endpoint, response.status_code, parsed)
            _redact(error, token, self._admin_token)
            if response.status_code == 429:
                seconds = retry_in(response, parsed)
                self.pacer.hold(token, endpoint, seconds)
                if not wait:
                    raise RateLimited(endpoint, seconds) from None
                continue
            if type(error) is ServerError:
                if not idempotent:
                    raise Ambiguous(endpoint, f"HTTP {response.status_code}: {error}") from None
                failures += 1
                if failures <= self.max_retries:
                    self._backoff(endpoint, failures, f"HTTP {response.status_code}")
                    continue
            raise error from None

    def _backoff(self, endpoint: str, failures: int, why: str) -> None:
        wait = min(30.0, self.backoff * 2 ** (failures - 1)) * (1 + random.random() / 4)
        log.warning(f"{endpoint}: {why}; retry {failures}/{self.max_retries} in {wait:.2f}s")
        time.sleep(wait)


def _json(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _redact(error: SharkeyError, *secrets: str | None) -> None:
    """Belt and braces: a server that echoes a token back must not leak it into our errors."""
    text = str(error)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
            error.args = (text,)
    for key, value in list(error.info.items()):
        if any(s and s in str(value) for s in secrets):
            error.info[key] = "***"


__all__ = ["SharkeyClient", "SharkeyError", "server_label", "fingerprint"]
