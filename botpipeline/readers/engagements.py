"""The output contract shared by the engagement readers (who liked / reposted which post).

Engagement sources only say *that* an account engaged with a post and *when the collector saw
it*, never when the like happened, so ``engaged_at`` stays null and ``observed_at`` carries the
scrape time. Collectors see the same engagement again on every re-scrape; one engagement per
(post, action, account) is kept, the earliest sighting. Readers feed rows into an
``EngagementCollector`` and get back an ``EngagementRead`` whose counters prove that every data
row was either accepted or quarantined, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from botpipeline.readers.twitterstream.messages import QUARANTINE_SCHEMA

ENGAGEMENT_SCHEMA = {
    "platform": pl.String, "post_id": pl.String, "action": pl.String,
    "account_id": pl.String, "username": pl.String, "engaged_at": pl.Datetime("us"),
    "observed_at": pl.Datetime("us"), "source": pl.String, "source_file": pl.String,
}
ACTIONS = ("like", "repost")
# Twitter's own rule for screen names; anything else is not an account we can join on.
USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
DIGITS = re.compile(r"[0-9]+")
RAW_LIMIT = 2000  # bytes of an offending input kept in the quarantine


def join_reasons(reasons: list[str], shown: int = 5) -> str:
    """One line's reasons in one message; a list of 100 bad names stays readable."""
    more = f"; and {len(reasons) - shown} more" if len(reasons) > shown else ""
    return "; ".join(reasons[:shown]) + more


def utc_naive(moment: datetime) -> datetime:
    """The project stores UTC instants as naive ``Datetime("us")``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@dataclass
class EngagementRead:
    """Engagements and quarantine of one reader run, with the counters that balance them.

    Row counters are over data rows (CSV records after the header, non-blank JSON lines) of
    files that were read. A row is *ok* when it was accepted whole (all its users became
    engagement candidates; a list of zero users is ok) and *quarantined* when it has a
    quarantine row (it may still have given engagements for its valid users). User counters
    are over the user entries inside accepted lists.
    """

    engagements: pl.DataFrame
    quarantine: pl.DataFrame
    files_read: int = 0
    files_quarantined: int = 0
    rows_read: int = 0
    rows_ok: int = 0
    rows_quarantined: int = 0
    blank_lines: int = 0
    users_read: int = 0
    users_expanded: int = 0
    users_quarantined: int = 0
    duplicates_dropped: int = 0
    # Likers scrape only: data rows of the tracked-tweets CSVs (part of rows_read; they are
    # validated, not expanded) and the distinct tweet ids in them.
    tracked_rows: int = 0
    tracked_tweets: int = 0

    def balance(self) -> dict[str, tuple[int, int]]:
        """Each accounting identity as (left, right); all pairs equal means nothing was lost."""
        scope = self.quarantine["scope"]
        line_rows = self.quarantine.filter(scope == "line")
        return {
            "rows_read = rows_ok + rows_quarantined":
                (self.rows_read, self.rows_ok + self.rows_quarantined),
            "users_read = users_expanded + users_quarantined":
                (self.users_read, self.users_expanded + self.users_quarantined),
            "users_expanded = engagements + duplicates_dropped":
                (self.users_expanded, self.engagements.height + self.duplicates_dropped),
            "rows_quarantined = distinct quarantined lines":
                (self.rows_quarantined,
                 line_rows.select("source_file", "line_number").n_unique()
                 if line_rows.height else 0),
            "files_quarantined = file-scope quarantine rows":
                (self.files_quarantined, int((scope == "file").sum())),
        }

    @property
    def nothing_lost(self) -> bool:
        return all(left == right for left, right in self.balance().values())


@dataclass
class EngagementCollector:
    """Accumulates candidates and quarantine rows in plain lists; frames are built once."""

    platform: str = "twitter"
    candidates: list[tuple] = field(default_factory=list)
    bad: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("files_read", "files_quarantined", "rows_read", "rows_ok", "rows_quarantined",
         "blank_lines", "users_read", "users_expanded", "users_quarantined"), 0))

    def add(self, post_id: str, action: str, account_id: str | None, username: str | None,
            observed_at: datetime, source: str, source_file: str) -> None:
        self.counts["users_read"] += 1
        self.counts["users_expanded"] += 1
        self.candidates.append((self.platform, post_id, action, account_id, username, None,
                                observed_at, source, source_file))

    def reject_user(self) -> None:
        """A user entry that is not an engagement; its reason goes into the line's quarantine."""
        self.counts["users_read"] += 1
        self.counts["users_quarantined"] += 1

    def quarantine_line(self, source_file: str, line_number: int, reason: str,
                        raw: bytes) -> None:
        """One quarantine row per offending data row (several reasons are joined)."""
        self.counts["rows_quarantined"] += 1
        self.bad.append({"source_file": source_file, "source_member": None,
                         "line_number": line_number, "scope": "line", "reason": reason,
                         "raw": raw[:RAW_LIMIT]})

    def quarantine_file(self, source_file: str, reason: str, raw: bytes) -> None:
        self.counts["files_quarantined"] += 1
        self.bad.append({"source_file": source_file, "source_member": None,
                         "line_number": None, "scope": "file", "reason": reason,
                         "raw": raw[:RAW_LIMIT]})

    def finish(self, **extra: int) -> EngagementRead:
        """Dedupe to the earliest sighting per (post, action, account) and freeze the counts.

        The account is the numeric id when known, else the username case-folded (Twitter
        usernames are case-insensitive); the earliest row keeps the username as given.
        """
        frame = pl.DataFrame(self.candidates, schema=ENGAGEMENT_SCHEMA, orient="row")
        key = pl.coalesce(pl.col("account_id"), pl.lit("@") + pl.col("username").str.to_lowercase())
        deduped = (frame.with_row_index("_order").with_columns(key.alias("_account"))
                   .sort("observed_at", "_order")
                   .unique(subset=["post_id", "action", "_account"], keep="first",
                           maintain_order=True)
                   .sort("post_id", "action", "_account")
                   .drop("_order", "_account"))
        return EngagementRead(
            engagements=deduped,
            quarantine=pl.DataFrame(self.bad, schema=QUARANTINE_SCHEMA),
            duplicates_dropped=frame.height - deduped.height,
            **self.counts, **extra)
