"""What the platform adapters share: rows gathered during one call, turned into conformed
core frames (and quarantine rows) at the end, and tolerant readers of JSON fields."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import polars as pl

from botpipeline.clients.platforms.base import QUARANTINE_COLUMNS, Collected
from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS, conform


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


def as_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value) -> str | None:
    return value if isinstance(value, str) else None


def as_list(value) -> list:
    return value if isinstance(value, list) else []
