"""Hacker News collector over the Algolia HN Search API (public, no key).

Hacker News lands in the ``core`` model so stories and comment trees go through the same
conversation, feature and coordination code as tweets. Choices, and why:

- Algolia serves at most the first 1,000 hits of any query (``nbHits`` may be larger), so when a
  window's hits exceed what paging can reach and more are wanted, the window is split in halves
  by ``created_at_i``, newer half first, until each fits. Windows are disjoint: every story is
  fetched once.
- HN has no numeric user ids: ``author_id`` and ``account_id`` are the username.
- A story's ``text`` is its title, then a blank line and its ``story_text`` (Ask/Show HN) or,
  when it has none, its ``url``, so that text features see what the reader sees. HN serves
  ``story_text``, comment text and ``about`` as HTML: ``<p>`` becomes a blank line, other tags
  are dropped and entities unescaped.
- ``like_count`` is the story's points, ``reply_count`` its ``num_comments``; HN shows neither
  for comments, so they stay null there. ``lang`` is always null (HN does not say).
- A story's ``conversation_id`` is its own id, a comment's its ``story_id``.
- ``/items/{id}`` gives the whole tree; it is read breadth first, so a ``max_per_post`` cap keeps
  the top-level comments. A deleted or dead comment (no author or no text) is quarantined with
  the reason, and its replies are still collected (their ``parent_id`` names it).
- Account rows made from authors carry only the username; ``created_at`` stays null until
  ``/users/{username}`` fills it, which is how ``collect()`` knows whom to fetch. ``karma`` has
  no column in the model and is skipped.
- An error answer that survives ``send()``'s retries quarantines the item it was for (for a
  search, the page, and paging of that window stops). ``calls`` counts HTTP requests, retries
  included.
"""

from __future__ import annotations

import html
import re
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from botpipeline.clients.platforms.base import Collected
from botpipeline.clients.platforms.rows import (JsonGetter, Rows, Unusable, as_int, as_list,
                                               as_str)

if TYPE_CHECKING:
    import requests

SEARCH = "/search_by_date"
PAGINATION_LIMIT = 1000  # Algolia's paginationLimitedTo for HN: hits beyond it are unreachable
MAX_HITS_PER_PAGE = 1000

_PARAGRAPH = re.compile(r"<p>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def epoch(value: datetime) -> int:
    """Epoch seconds of a datetime (naive means UTC)."""
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def from_epoch(value, field: str = "created_at_i") -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            pass
    raise Unusable(f"missing or bad {field}")


def plain(text: str | None) -> str | None:
    """HN's HTML as plain text: paragraphs as blank lines, tags dropped, entities unescaped."""
    if not isinstance(text, str) or not text:
        return None
    return html.unescape(_TAG.sub("", _PARAGRAPH.sub("\n\n", text))).strip()


def _id(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _author(username: str, observed_at: datetime) -> dict:
    return {"platform": "hackernews", "account_id": username, "username": username,
            "observed_at": observed_at, "source": "hackernews"}


def map_story(hit: dict) -> dict:
    """A core post row from a search hit (or an item of type story)."""
    if not isinstance(hit, dict):
        raise Unusable("hit is not an object", hit)
    story_id, author = _id(hit.get("objectID")) or _id(hit.get("id")), as_str(hit.get("author"))
    missing = [name for name, value in (("objectID", story_id), ("author", author)) if not value]
    if missing:
        raise Unusable("missing " + ", ".join(missing), hit)
    try:
        created_at = from_epoch(hit.get("created_at_i"))
    except Unusable as exc:
        raise Unusable(str(exc), hit) from None
    title = as_str(hit.get("title")) or ""
    body = plain(hit.get("story_text")) or as_str(hit.get("url"))
    return {"platform": "hackernews", "post_id": story_id, "author_id": author,
            "author_username": author, "kind": "post", "conversation_id": story_id,
            "created_at": created_at, "text": f"{title}\n\n{body}" if body else title or None,
            "like_count": as_int(hit.get("points")), "reply_count": as_int(hit.get("num_comments")),
            "source": "hackernews"}


def map_comment(item: dict, story_id: str, parent_id: str) -> dict:
    """A core reply row from a node of an /items tree."""
    comment_id = _id(item.get("id"))
    if comment_id is None:
        raise Unusable("comment without id", item)
    if item.get("type", "comment") != "comment":
        raise Unusable(f"{item.get('type')} item in the comment tree, not a comment", item)
    author, text = as_str(item.get("author")), plain(item.get("text"))
    if not author or not text:
        lacks = " and ".join(name for name, value in (("author", author), ("text", text))
                             if not value)
        raise Unusable(f"deleted or dead comment (no {lacks})", item)
    try:
        created_at = from_epoch(item.get("created_at_i"))
    except Unusable as exc:
        raise Unusable(str(exc), item) from None
    return {"platform": "hackernews", "post_id": comment_id, "author_id": author,
            "author_username": author, "kind": "reply",
            "parent_id": _id(item.get("parent_id")) or parent_id,
            "conversation_id": _id(item.get("story_id")) or story_id, "created_at": created_at,
            "text": text, "like_count": as_int(item.get("points")), "source": "hackernews"}


def map_user(body: dict, observed_at: datetime) -> dict:
    username = as_str(body.get("username"))
    if not username:
        raise Unusable("user without username", body)
    try:
        created_at = from_epoch(body.get("created_at_i"))
    except Unusable:
        created_at = None  # the account is still worth keeping
    return {"platform": "hackernews", "account_id": username, "username": username,
            "description": plain(body.get("about")), "created_at": created_at,
            "post_count": as_int(body.get("submission_count")), "observed_at": observed_at,
            "source": "hackernews"}


class HackerNewsAdapter(JsonGetter):
    platform = "hackernews"

    def __init__(self, base_url: str = "https://hn.algolia.com/api/v1",
                 session: requests.Session | None = None, hits_per_page: int = 1000,
                 max_retries: int = 5, sleep: Callable[[float], None] = time.sleep,
                 timeout: float = 30.0):
        super().__init__(base_url, session, max_retries, sleep, timeout)
        self.hits_per_page = max(1, min(hits_per_page, MAX_HITS_PER_PAGE))

    def __repr__(self) -> str:
        return f"HackerNewsAdapter({self.base_url!r})"

    def search_posts(self, query: str, since: datetime, until: datetime,
                     limit: int) -> Collected:
        rows = Rows(self.platform)
        self._window(rows, query, epoch(since), epoch(until), limit)
        return rows.collected()

    def _window(self, rows: Rows, query: str, start: int, end: int, limit: int) -> None:
        """Stories created in [start, end), newest first, until ``rows`` holds ``limit``."""
        wanted = limit - len(rows.posts)
        if wanted <= 0 or start >= end:
            return
        per_page = min(self.hits_per_page, wanted)
        params = {"query": query, "tags": "story", "hitsPerPage": per_page,
                  "numericFilters": f"created_at_i>={start},created_at_i<{end}"}
        page = 0
        while len(rows.posts) < limit:
            try:
                body = self._get(rows, SEARCH, {**params, "page": page})
            except Unusable as exc:
                rows.quarantine(f"search_by_date query={query!r} window=[{start},{end}) "
                                f"page={page}", str(exc), exc.raw)
                return
            found = as_int(body.get("nbHits")) or 0
            if page == 0 and min(found, wanted) > PAGINATION_LIMIT:
                if end - start > 1:
                    middle = (start + end) // 2
                    self._window(rows, query, middle, end, limit)
                    self._window(rows, query, start, middle, limit)
                    return
                rows.quarantine(f"search_by_date query={query!r} window=[{start},{end})",
                                f"more stories in one second than Algolia pages to "
                                f"({PAGINATION_LIMIT}); the rest are unreachable",
                                {"nbHits": found, "window": [start, end]})
            hits = as_list(body.get("hits"))
            for hit in hits[:limit - len(rows.posts)]:
                self._add_story(rows, hit)
            page += 1
            pages = as_int(body.get("nbPages"))
            if (not hits or page * per_page >= min(found, PAGINATION_LIMIT)
                    or (pages is not None and page >= pages)):
                return

    def _add_story(self, rows: Rows, hit) -> None:
        try:
            post = map_story(hit)
        except Unusable as exc:
            rows.quarantine(_id(hit.get("objectID")) if isinstance(hit, dict) else None,
                            str(exc), exc.raw)
            return
        rows.posts.append(post)
        rows.accounts.append(_author(post["author_id"], rows.observed_at))

    def comments(self, post_ids: list[str], max_per_post: int) -> Collected:
        rows = Rows(self.platform)
        if max_per_post <= 0:
            return rows.collected()
        for story_id in dict.fromkeys(str(i) for i in post_ids):
            try:
                tree = self._get(rows, f"/items/{quote(story_id)}")
            except Unusable as exc:
                rows.quarantine(story_id, str(exc), exc.raw)
                continue
            queue = deque((child, story_id) for child in as_list(tree.get("children")))
            taken = 0
            while queue and taken < max_per_post:
                item, parent = queue.popleft()
                if not isinstance(item, dict):
                    rows.quarantine(None, "comment is not an object", item)
                    continue
                try:
                    post = map_comment(item, story_id, parent)
                except Unusable as exc:
                    rows.quarantine(_id(item.get("id")), str(exc), exc.raw)
                else:
                    rows.posts.append(post)
                    rows.accounts.append(_author(post["author_id"], rows.observed_at))
                    taken += 1
                here = _id(item.get("id")) or parent
                queue.extend((child, here) for child in as_list(item.get("children")))
        return rows.collected()

    def profiles(self, account_ids: list[str]) -> Collected:
        rows = Rows(self.platform)
        for username in dict.fromkeys(a for a in account_ids if a):
            try:
                rows.accounts.append(map_user(self._get(rows, f"/users/{quote(username)}"),
                                              rows.observed_at))
            except Unusable as exc:
                rows.quarantine(username, str(exc), exc.raw)
        return rows.collected()
