"""What the platform adapters share: rows gathered during one call, turned into conformed
core frames (and quarantine rows) at the end; tolerant readers of JSON fields; and GETs of
JSON objects through clients/http.send (retries, 429s) where any failure becomes a reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
import polars as pl

from botpipeline.clients.http import send
from botpipeline.clients.platforms.base import QUARANTINE_COLUMNS, Collected
from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS, conform

if TYPE_CHECKING:
    import requests


class Unusable(ValueError):
    """An item or answer that cannot be used; the message is the quarantine reason."""

    def __init__(self, reason: str, raw=None):
        super().__init__(reason)
        self.raw = raw


class Rows:
    """Rows gathered during one adapter call, turned into conformed frames at the end."""

    def __init__(self, platform: str):
        self.platform = platform
        self.posts: list[dict] = []
        self.accounts: list[dict] = []
        self.quarantined: list[dict] = []
        self.calls = 0
        self.observed_at = datetime.now(UTC).replace(tzinfo=None)

    def quarantine(self, item_id, reason: str, raw=None) -> None:
        if raw is not None and not isinstance(raw, str):
            raw = orjson.dumps(raw).decode()
        self.quarantined.append({"platform": self.platform, "reason": reason, "raw": raw,
                                 "item_id": None if item_id is None else str(item_id)})

    def collected(self) -> Collected:
        posts = conform(pl.DataFrame(self.posts, schema=POST_COLUMNS), POST_COLUMNS)
        accounts = conform(pl.DataFrame(self.accounts, schema=ACCOUNT_COLUMNS), ACCOUNT_COLUMNS)
        return Collected(
            posts.unique(["platform", "post_id"], keep="last", maintain_order=True),
            accounts.unique(["platform", "account_id"], keep="last", maintain_order=True),
            pl.DataFrame(self.quarantined, schema=QUARANTINE_COLUMNS), self.calls)


def utc_naive(value: datetime) -> datetime:
    """A datetime in naive UTC (naive input is taken to be UTC already)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def parse_time(value, field: str = "createdAt") -> datetime:
    try:
        return utc_naive(datetime.fromisoformat(value))
    except (TypeError, ValueError, OverflowError):
        raise Unusable(f"unparseable {field}") from None


def as_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value) -> str | None:
    return value if isinstance(value, str) else None


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def failure_reason(path: str, response: requests.Response) -> str:
    """A reason that groups well: status, endpoint and the API's error code (body in raw)."""
    try:
        code = orjson.loads(response.content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        code = None
    return f"HTTP {response.status_code} from {path}" + (
        f" ({code})" if isinstance(code, str) and len(code) <= 60 else "")


class JsonGetter:
    """GETs of JSON objects from ``base_url``, retried by ``send``; counted in ``rows``."""

    def __init__(self, base_url: str, session: requests.Session | None, max_retries: int,
                 sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        if session is None:
            import requests
            session = requests.Session()
        self.session = session
        self.max_retries, self.sleep, self.timeout = max_retries, sleep, timeout

    def _get(self, rows: Rows, path: str, params: dict | None = None) -> dict:
        """The JSON object of a 200 answer; anything else raises ``Unusable``."""
        def call() -> requests.Response:
            rows.calls += 1
            return self.session.get(self.base_url + path, params=params, timeout=self.timeout)

        response = send(call, max_retries=self.max_retries, what=self.base_url, sleep=self.sleep)
        if response.status_code != 200:
            raise Unusable(failure_reason(path, response), response.text[:2000])
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise Unusable(f"answer from {path} is not JSON", response.text[:2000]) from None
        if not isinstance(body, dict):
            raise Unusable(f"answer from {path} is not a JSON object", body)
        return body
