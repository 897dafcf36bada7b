"""Read notes and users back from a Sharkey/Misskey instance into the core model.

A published OASIS run (or any instance) can so be collected again and analysed like any
platform. Sharkey has no search in the API contract this project relies on, so a *query* is
an account: ``@username`` (or a bare username). Its notes in [since, until) come from
``users/notes`` paged backwards with ``untilId``; the window is expressed as ids, since an
``aidx`` id starts with the creation time (ms since 2000-01-01, base 36), so string order is
time order. Replies by collected accounts are in their own timelines, so ``comments`` adds
nothing; ``profiles`` is ``users/show`` by id.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import polars as pl

from botpipeline.clients.platforms.base import QUARANTINE_COLUMNS, Collected
from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.errors import NotFound
from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS, conform

EPOCH_2000 = datetime(2000, 1, 1, tzinfo=timezone.utc)
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def aidx_floor(moment: datetime) -> str:
    """The smallest aidx id created at or after ``moment`` (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    ms = max(0, int((moment - EPOCH_2000).total_seconds() * 1000))
    digits = ""
    while ms:
        ms, rest = divmod(ms, 36)
        digits = BASE36[rest] + digits
    return digits.rjust(8, "0") + "0" * 8


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def notes_to_posts(notes: list[dict], users: dict[str, dict]) -> pl.DataFrame:
    rows = []
    for note in notes:
        text, renote = note.get("text"), note.get("renoteId")
        kind = ("reply" if note.get("replyId") else
                "repost" if renote and not text else "quote" if renote else "post")
        user = note.get("user") or users.get(note.get("userId"), {})
        reactions = note.get("reactions") or {}
        rows.append({
            "platform": "sharkey", "post_id": note["id"], "author_id": note.get("userId"),
            "author_username": user.get("username"), "kind": kind,
            "parent_id": note.get("replyId"),
            "reposted_id": renote if kind == "repost" else None,
            "quoted_id": renote if kind == "quote" else None,
            "created_at": _time(note.get("createdAt")), "text": text,
            "like_count": note.get("reactionCount", sum(reactions.values()) or None),
            "repost_count": note.get("renoteCount"), "reply_count": note.get("repliesCount"),
            "source": "sharkey"})
    return conform(pl.DataFrame(rows, infer_schema_length=None) if rows
                   else pl.DataFrame(), POST_COLUMNS)


def users_to_accounts(users: list[dict], observed_at: datetime) -> pl.DataFrame:
    rows = [{"platform": "sharkey", "account_id": u["id"], "username": u.get("username"),
             "display_name": u.get("name"), "description": u.get("description"),
             "created_at": _time(u.get("createdAt")),
             "followers_count": u.get("followersCount"),
             "following_count": u.get("followingCount"), "post_count": u.get("notesCount"),
             "verified": False, "protected": bool(u.get("isLocked", False)),
             "default_profile_image": u.get("avatarId") is None and not u.get("avatarUrl"),
             "observed_at": observed_at, "source": "sharkey"} for u in users]
    return conform(pl.DataFrame(rows, infer_schema_length=None) if rows
                   else pl.DataFrame(), ACCOUNT_COLUMNS)


class SharkeyAdapter:
    platform = "sharkey"

    def __init__(self, client: SharkeyClient, page_size: int = 100):
        self.client, self.page_size = client, page_size
        self._users: dict[str, dict] = {}

    def _quarantine(self, item: str, reason: str, raw: object = None) -> pl.DataFrame:
        return pl.DataFrame([{"platform": self.platform, "item_id": item, "reason": reason,
                              "raw": orjson.dumps(raw).decode() if raw is not None else None}],
                            schema=QUARANTINE_COLUMNS)

    def _user(self, username: str) -> dict | None:
        if username not in self._users:
            try:
                self._users[username] = self.client.call(
                    "users/show", {"username": username, "host": None})
            except NotFound:
                self._users[username] = None
        return self._users[username]

    def search_posts(self, query: str, since: datetime, until: datetime,
                     limit: int) -> Collected:
        username = query.strip().lstrip("@")
        calls = self.client.calls
        user = self._user(username)
        if user is None:
            return Collected(quarantine=self._quarantine(query, "no such user on the server"),
                             calls=self.client.calls - calls)
        notes: list[dict] = []
        until_id, since_id = aidx_floor(until), aidx_floor(since)
        while len(notes) < limit:
            page = self.client.call("users/notes", {
                "userId": user["id"], "limit": min(self.page_size, limit - len(notes)),
                "untilId": until_id, "sinceId": since_id}) or []
            if not page:
                break
            notes.extend(page)
            until_id = min(n["id"] for n in page)
        bad = [n for n in notes if not n.get("id") or not n.get("createdAt")]
        good = [n for n in notes if n not in bad]
        quarantine = pl.concat([self._quarantine(n.get("id") or "?", "note without id or "
                                                 "createdAt", n) for n in bad]) if bad \
            else Collected().quarantine
        observed = datetime.now(timezone.utc).replace(tzinfo=None)
        return Collected(notes_to_posts(good, {user["id"]: user}),
                         users_to_accounts([user], observed), quarantine,
                         self.client.calls - calls)

    def comments(self, post_ids: list[str], max_per_post: int) -> Collected:
        return Collected()

    def profiles(self, account_ids: list[str]) -> Collected:
        calls, users, quarantine = self.client.calls, [], []
        for account_id in account_ids:
            try:
                users.append(self.client.call("users/show", {"userId": account_id}))
            except NotFound:
                quarantine.append(self._quarantine(account_id, "no such user on the server"))
        observed = datetime.now(timezone.utc).replace(tzinfo=None)
        return Collected(accounts=users_to_accounts(users, observed),
                         quarantine=pl.concat(quarantine) if quarantine
                         else Collected().quarantine, calls=self.client.calls - calls)
