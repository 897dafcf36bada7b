"""Read notes and users back from a Sharkey/Misskey instance into the core model.

A published OASIS run (or any instance) can so be collected again and analysed like any
platform. Sharkey has no search in the API contract this project relies on, so a *query* is
an account: ``@username`` (or a bare username). Its notes in [since, until) come from
``users/notes`` paged backwards with ``untilId``; the window is expressed as ids, since an
``aidx`` id starts with the creation time (ms since 2000-01-01, base 36), so string order is
time order. Replies by collected accounts are in their own timelines (``withReplies``: the
servers hide them otherwise), so ``comments`` adds nothing; ``profiles`` is ``users/show`` by
id.
"""

from __future__ import annotations

from datetime import datetime

from botpipeline.clients.platforms.base import Collected
from botpipeline.clients.platforms.rows import Rows, Unusable, parse_time, utc_naive
from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.errors import NotFound

EPOCH_2000 = datetime(2000, 1, 1)  # naive UTC
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def aidx_floor(moment: datetime) -> str:
    """The smallest aidx id created at or after ``moment`` (naive = UTC)."""
    ms = max(0, int((utc_naive(moment) - EPOCH_2000).total_seconds() * 1000))
    digits = ""
    while ms:
        ms, rest = divmod(ms, 36)
        digits = BASE36[rest] + digits
    return digits.rjust(8, "0") + "0" * 8


def note_row(note: dict, users: dict[str, dict]) -> dict:
    """One note as a core post row (``Unusable`` without an id or a creation time)."""
    if not note.get("id") or not note.get("createdAt"):
        raise Unusable("note without id or createdAt", note)
    text, renote = note.get("text"), note.get("renoteId")
    kind = ("reply" if note.get("replyId") else
            "repost" if renote and not text else "quote" if renote else "post")
    user = note.get("user") or users.get(note.get("userId"), {})
    reactions = note.get("reactions") or {}
    return {"platform": "sharkey", "post_id": note["id"], "author_id": note.get("userId"),
            "author_username": user.get("username"), "kind": kind,
            "parent_id": note.get("replyId"),
            "reposted_id": renote if kind == "repost" else None,
            "quoted_id": renote if kind == "quote" else None,
            "created_at": parse_time(note["createdAt"]), "text": text,
            "like_count": note.get("reactionCount", sum(reactions.values()) or None),
            "repost_count": note.get("renoteCount"), "reply_count": note.get("repliesCount"),
            "source": "sharkey"}


def account_row(user: dict, observed_at: datetime) -> dict:
    created = user.get("createdAt")
    return {"platform": "sharkey", "account_id": user["id"], "username": user.get("username"),
            "display_name": user.get("name"), "description": user.get("description"),
            "created_at": parse_time(created) if created else None,
            "followers_count": user.get("followersCount"),
            "following_count": user.get("followingCount"), "post_count": user.get("notesCount"),
            "verified": False, "protected": bool(user.get("isLocked", False)),
            "default_profile_image": user.get("avatarId") is None and not user.get("avatarUrl"),
            "observed_at": observed_at, "source": "sharkey"}


class SharkeyAdapter:
    platform = "sharkey"

    def __init__(self, client: SharkeyClient, page_size: int = 100):
        self.client, self.page_size = client, page_size
        self._users: dict[str, dict] = {}

    def _user(self, username: str) -> dict | None:
        if username not in self._users:
            try:
                self._users[username] = self.client.call(
                    "users/show", {"username": username, "host": None})
            except NotFound:
                self._users[username] = None
        return self._users[username]

    def _done(self, rows: Rows, calls_before: int) -> Collected:
        rows.calls = self.client.calls - calls_before
        return rows.collected()

    def search_posts(self, query: str, since: datetime, until: datetime,
                     limit: int) -> Collected:
        rows, calls = Rows(self.platform), self.client.calls
        username = query.strip().lstrip("@")
        user = self._user(username)
        if user is None:
            rows.quarantine(query, "no such user on the server")
            return self._done(rows, calls)
        notes: list[dict] = []
        until_id, since_id = aidx_floor(until), aidx_floor(since)
        while len(notes) < limit:
            page = self.client.call("users/notes", {
                "userId": user["id"], "limit": min(self.page_size, limit - len(notes)),
                "untilId": until_id, "sinceId": since_id,
                # Misskey and Sharkey leave replies out unless asked.
                "withReplies": True, "withRenotes": True}) or []
            if not page:
                break
            notes.extend(page)
            until_id = min(n["id"] for n in page)
        for note in notes:
            try:
                rows.posts.append(note_row(note, {user["id"]: user}))
            except Unusable as exc:
                rows.quarantine(note.get("id") or "?", str(exc), exc.raw)
        rows.accounts.append(account_row(user, rows.observed_at))
        return self._done(rows, calls)

    def comments(self, post_ids: list[str], max_per_post: int) -> Collected:
        return Collected()

    def profiles(self, account_ids: list[str]) -> Collected:
        rows, calls = Rows(self.platform), self.client.calls
        for account_id in account_ids:
            try:
                rows.accounts.append(account_row(
                    self.client.call("users/show", {"userId": account_id}), rows.observed_at))
            except NotFound:
                rows.quarantine(account_id, "no such user on the server")
        return self._done(rows, calls)
