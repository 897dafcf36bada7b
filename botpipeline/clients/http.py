"""Shared HTTP behaviour for API clients: retries, rate limits, secrets kept out of errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


class ApiError(RuntimeError):
    """An API answered with an error (never carries credentials)."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.code = status, code


def retry_after_seconds(response: requests.Response, now: float | None = None) -> float:
    """How long a 429 asks us to wait: Retry-After, else an epoch x-rate-limit-reset."""
    now = time.time() if now is None else now
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = response.headers.get("x-rate-limit-reset") or response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset)
            return max(0.0, value - now) if value > 1e9 else max(0.0, value)
        except ValueError:
            pass
    return 60.0


def send(call: Callable[[], requests.Response], *, max_retries: int = 5,
         backoff: float = 1.0, max_wait: float = 900.0, what: str = "the server",
         sleep: Callable[[float], None] = time.sleep) -> requests.Response:
    """Run ``call`` until it answers below 500 and not 429, within ``max_retries`` retries.

    Timeouts, dropped connections and 5xx are retried with exponential backoff and jitter;
    429 waits as the server says (bounded by ``max_wait``).
    """
    import requests  # deferred: loading the code location needs no HTTP stack
    for attempt in range(max_retries + 1):
        try:
            response = call()
        except (requests.ConnectionError, requests.Timeout) as exc:
            if attempt == max_retries:
                raise ApiError(0, f"{what} did not answer after {attempt + 1} tries "
                                  f"({type(exc).__name__})") from None
            wait = backoff * 2 ** attempt * (1 + random.random() / 4)
            log.warning(f"{type(exc).__name__}; retrying in {wait:.1f}s")
            sleep(wait)
            continue
        if response.status_code == 429 and attempt < max_retries:
            wait = min(retry_after_seconds(response), max_wait)
            log.warning(f"rate limited; waiting {wait:.1f}s as the server asks")
            sleep(wait)
            continue
        if response.status_code >= 500 and attempt < max_retries:
            wait = backoff * 2 ** attempt * (1 + random.random() / 4)
            log.warning(f"HTTP {response.status_code}; retrying in {wait:.1f}s")
            sleep(wait)
            continue
        return response
    return response
