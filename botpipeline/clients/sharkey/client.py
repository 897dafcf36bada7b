"""A Sharkey/Misskey API client on ``requests``.

Every call is ``POST /api/<endpoint>`` with the token in the ``Authorization`` header. The
client paces each (token, endpoint) pair on its own: the server meters every user separately,
so one account waiting out its limit never holds back another. Idempotent calls are retried on
5xx, timeouts, dropped connections and answers cut off mid-body; a non-idempotent call
(``notes/create``, ``admin/accounts/create``) whose answer was not seen raises
:class:`Ambiguous` instead, because the server may have applied it.

Tokens never reach logs or exceptions: errors name the endpoint and an owner label only.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import statistics
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botpipeline.clients.sharkey.errors import (Ambiguous, RateLimited, ServerError,
                                                SharkeyError, Unreachable, error_from_body)
from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, Limit, limit_for

if TYPE_CHECKING:
    import requests

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
    """When each (token, endpoint) may call next, learned from the server's answers.

    Sharkey meters with leaky buckets and says so on every answer (``X-RateLimit-Remaining``).
    Misskey sends no such header (``windowed``, decided by the first answer) and meters with
    sliding windows that count refused calls too, so knocking on a closed window keeps it
    closed. Either way the first 429 of an endpoint shows that its limit binds; from then on
    every call to it is counted here and waits until the limiter has room: a mirror of the
    leaky bucket (the table's size and drain), or each sliding window: those a 429 teaches
    (``info.total`` calls per the span its ``resetMs`` implies) and the table's (the only
    source where a 429 says nothing, as sign-in's does). Several calls in flight on one
    (token, endpoint), as account creation has, share the count.
    """

    LOG = 1024  # attempts remembered per (token, endpoint): more than any window's max

    def __init__(self, limits: Mapping[str, Limit] = SHARKEY_LIMITS):
        self._next: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.limits = limits
        self.windowed: bool | None = None
        self._attempts: dict[tuple[str, str], deque] = {}
        self._level: dict[tuple[str, str], tuple[float, float]] = {}  # bucket: (level, at)
        self._learned: dict[str, dict[int, float]] = defaultdict(dict)  # endpoint: {max: s}
        self._latency: dict[str, deque] = defaultdict(lambda: deque(maxlen=self.LOG))
        self.refused: Counter = Counter()  # 429s per endpoint: also which ones bind

    def windows(self, endpoint: str) -> dict[int, float]:
        """{max calls: seconds} that bind ``endpoint`` on a sliding-window server."""
        out = dict(self._learned.get(endpoint, {}))
        limit = self.limits.get(endpoint) if self.refused[endpoint] else None
        if limit is not None:
            out[limit.max] = max(out.get(limit.max, 0.0), limit.duration_ms / 1000)
            if limit.min_interval_ms:
                out[1] = max(out.get(1, 0.0), limit.min_interval_ms / 1000)
        return out

    def _wait(self, key: tuple[str, str]) -> tuple[float, float]:
        """(seconds to wait, the bucket's level now); call with the lock held."""
        endpoint, now = key[1], time.monotonic()
        until = self._next.get(key, 0.0) - now
        level, at = self._level.get(key, (0.0, now))
        if self.windowed:
            log, wall = self._attempts.get(key), time.time()
            for calls, seconds in self.windows(endpoint).items() if log else ():
                if len(log) >= calls:  # margin: the server logs a call after we send it
                    until = max(until, log[-calls] + seconds * 1.01 + 0.02 - wall)
        else:
            limit = limit_for(endpoint, self.limits)
            level = max(0.0, level - (now - at) / limit.interval_s)
            if self.refused[endpoint] and level + 1 > limit.max:
                until = max(until, (level + 1 - limit.max) * limit.interval_s)
        return max(0.0, until), level

    def wait_for(self, token: str | None, endpoint: str) -> float:
        with self._lock:
            return self._wait((fingerprint(token), endpoint))[0]

    def acquire(self, token: str | None, endpoint: str) -> float:
        """0.0 and the call is counted (send it now), or the seconds to wait first."""
        key = (fingerprint(token), endpoint)
        with self._lock:
            seconds, level = self._wait(key)
            if seconds > 0:
                return seconds
            self._attempts.setdefault(key, deque(maxlen=self.LOG)).append(time.time())
            self._level[key] = (level + 1, time.monotonic())
            return 0.0

    def hold(self, token: str | None, endpoint: str, seconds: float) -> None:
        key = (fingerprint(token), endpoint)
        with self._lock:
            self._next[key] = max(self._next.get(key, 0.0), time.monotonic() + seconds)

    def observe(self, token: str | None, endpoint: str, response: requests.Response,
                seconds: float) -> None:
        """An answer: its latency, which kind of limiter the server has, and whether a
        bucket is full (then wait one drain interval before the next call)."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        with self._lock:
            if response.status_code < 300:
                self._latency[endpoint].append(seconds)
            if self.windowed is None and response.status_code != 429:
                self.windowed = remaining is None
        if remaining is not None and remaining.strip() == "0":
            interval = limit_for(endpoint, self.limits).interval_s
            clear = _float(response.headers.get("X-RateLimit-Clear"))
            self.hold(token, endpoint, min(interval, clear) if clear is not None else interval)

    def refuse(self, token: str | None, endpoint: str, response: requests.Response,
               body: object) -> float:
        """A 429: the limit binds; learn the window it reveals, and hold the (token,
        endpoint) until the limiter has room. Returns the seconds to wait."""
        key = (fingerprint(token), endpoint)
        info = body.get("error", {}).get("info") if isinstance(body, dict) else None
        seconds = retry_in(response, body)
        with self._lock:
            self.refused[endpoint] += 1
            log = self._attempts.get(key) or deque()
            total, reset_ms = (info.get("total"), info.get("resetMs")) \
                if isinstance(info, dict) else (None, None)
            if isinstance(total, int) and total > 0 and isinstance(reset_ms, (int, float)) \
                    and reset_ms > 1e12 and len(log) > total:
                # The window held `total` calls before this one; the oldest leaves at resetMs.
                span = reset_ms / 1000 - log[-total - 1]
                learned = self._learned[endpoint]
                learned[total] = max(learned.get(total, 0.0), span)
            if not self.windowed:  # the server's bucket is full, whatever ours said
                self._level[key] = (float(limit_for(endpoint, self.limits).max),
                                    time.monotonic())
            seconds = max(seconds, self._wait(key)[0])
        self.hold(token, endpoint, seconds)
        return seconds

    def latency(self) -> dict[str, float]:
        """The median seconds the server took to answer each endpoint."""
        with self._lock:
            return {e: statistics.median(v) for e, v in self._latency.items() if v}


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
        import requests  # deferred: the code location loads without the HTTP stack
        from requests.adapters import HTTPAdapter
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
        import requests
        token = self._admin_token if token is None else token
        if idempotent is None:
            idempotent = endpoint not in NON_IDEMPOTENT
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.server}/api/{endpoint}"
        failures = 0
        while True:
            pause = self.pacer.acquire(token, endpoint)
            if pause > 0:
                if not wait:
                    raise RateLimited(endpoint, pause, "paced: the limit binds")
                time.sleep(pause)
                continue
            try:
                self.calls += 1
                sent_at = time.monotonic()
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
            except lost_answer_errors() as exc:
                # Cut off mid-body (ChunkedEncodingError: IncompleteRead), dropped, timed out.
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
            self.pacer.observe(token, endpoint, response, time.monotonic() - sent_at)
            if response.status_code == 204:
                return None
            parsed = _json(response)
            if response.status_code < 300:
                if parsed is None:  # a 200 whose body does not parse: the answer is lost
                    if not idempotent:
                        raise Ambiguous(endpoint, "HTTP 200 with an unreadable body")
                    failures += 1
                    if failures <= self.max_retries:
                        self._backoff(endpoint, failures, "unreadable body")
                        continue
                    raise ServerError(endpoint, response.status_code, None,
                                      "answers with an unreadable body")
                return parsed
            error = error_from_body(endpoint, response.status_code, parsed)
            _redact(error, token, self._admin_token)
            if response.status_code == 429:
                seconds = self.pacer.refuse(token, endpoint, response, parsed)
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


def lost_answer_errors() -> tuple[type[Exception], ...]:
    """The requests errors after which the server may or may not have acted."""
    import requests
    return (requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError)


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
