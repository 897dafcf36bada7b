"""Bluesky collector over the AppView XRPC API (searchPosts, getPostThread, getProfiles).

Bluesky lands in the ``core`` model so its posts go through the same conversation, feature and
coordination code as tweets. Choices, and why:

- ``record.createdAt`` is written by the posting app, not by the server: a naive value is read as
  UTC, an unparseable one quarantines the post with the reason (never a crash, never a silent
  drop). Any item missing ``uri``, ``author.did`` or ``record`` is quarantined the same way.
- A record embed counts as a quote only when it embeds a post (not a feed, list or starter
  pack); ``quoted_id`` is kept on replies that also quote, as the Twitter v2 mapping does.
- A root post's ``conversation_id`` is its own uri (the thread it starts), a reply's is
  ``record.reply.root.uri``.
- Post views carry only a basic author view, so account rows made from post authors leave
  ``created_at`` and the counts null; ``collect()`` sees the null ``created_at`` and fetches the
  full profile (getProfiles, 25 actors a call). ``default_profile_image`` is "no avatar"; a
  profile's unparseable ``createdAt`` is left null (the account is still worth keeping).
- Thread replies are read breadth first, so a ``max_per_post`` cap keeps the direct replies;
  getPostThread is asked for no ancestors (``parentHeight=0``).
- searchPosts without login has answered 403 on public.api.bsky.app since January 2025, and
  always with a ``cursor`` (bluesky-social/atproto#3423, #2838): for real collection pass a
  ``session`` carrying an ``Authorization: Bearer`` header and the account's PDS as
  ``base_url`` (it proxies to the AppView). Thread and profile reads work without login.
- An error answer that survives ``send()``'s retries quarantines the item it was for (for a
  search, the page, and paging of that query stops). ``calls`` counts HTTP requests, retries
  included.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from botpipeline.clients.platforms.base import Collected
from botpipeline.clients.platforms.rows import (JsonGetter, Rows, Unusable, as_int, as_list,
                                               as_str, parse_time, utc_naive)

if TYPE_CHECKING:
    import requests

SEARCH = "/xrpc/app.bsky.feed.searchPosts"
THREAD = "/xrpc/app.bsky.feed.getPostThread"
PROFILES = "/xrpc/app.bsky.actor.getProfiles"
MAX_SEARCH_PAGE = 100   # searchPosts' largest ``limit``
PROFILE_BATCH = 25      # getProfiles' largest number of ``actors``
MAX_THREAD_DEPTH = 1000  # getPostThread's largest ``depth``
POST_COLLECTION = "/app.bsky.feed.post/"


def iso_utc(value: datetime) -> str:
    return utc_naive(value).isoformat(timespec="milliseconds") + "Z"


def _uri(ref) -> str | None:
    return as_str(ref.get("uri")) if isinstance(ref, dict) else None


def quoted_uri(embed) -> str | None:
    """The post a record embed (plain or with media) quotes, if it embeds a post."""
    if not isinstance(embed, dict):
        return None
    kind = str(embed.get("$type") or "")
    ref = embed.get("record")
    if kind.startswith("app.bsky.embed.recordWithMedia") and isinstance(ref, dict):
        ref = ref.get("record")
    elif not kind.startswith("app.bsky.embed.record"):
        return None
    uri = _uri(ref)
    return uri if uri and POST_COLLECTION in uri else None


def map_account(view: dict, observed_at: datetime, full: bool) -> dict:
    """An account row from a profile view; ``full`` for getProfiles' detailed views."""
    did = as_str(view.get("did")) if isinstance(view, dict) else None
    if not did:
        raise Unusable("profile without did", view)
    created = view.get("createdAt") if full else None
    try:
        created_at = parse_time(created) if created else None
    except Unusable:
        created_at = None
    return {"platform": "bluesky", "account_id": did, "username": as_str(view.get("handle")),
            "display_name": as_str(view.get("displayName")),
            "description": as_str(view.get("description")),
            "created_at": created_at, "followers_count": as_int(view.get("followersCount")),
            "following_count": as_int(view.get("followsCount")),
            "post_count": as_int(view.get("postsCount")),
            "default_profile_image": not view.get("avatar"), "observed_at": observed_at,
            "source": "bluesky"}


def map_post(view: dict, thread_parent: str | None = None,
             thread_root: str | None = None) -> dict:
    """A core post row from a postView; the thread position fills a reply's missing refs."""
    if not isinstance(view, dict):
        raise Unusable("post view is not an object", view)
    author = view.get("author") if isinstance(view.get("author"), dict) else {}
    record = view.get("record")
    uri, did = as_str(view.get("uri")), as_str(author.get("did"))
    missing = [name for name, value in (("uri", uri), ("author.did", did), ("record", record))
               if not value]
    if missing:
        raise Unusable("missing " + ", ".join(missing), view)
    if not isinstance(record, dict):
        raise Unusable("record is not an object", view)
    try:
        created_at = parse_time(record.get("createdAt"), "record.createdAt")
    except Unusable as exc:
        raise Unusable(str(exc), view) from None
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    parent = _uri(reply.get("parent")) or thread_parent
    root = _uri(reply.get("root")) or thread_root or parent
    quoted = quoted_uri(record.get("embed"))
    langs = record.get("langs")
    return {"platform": "bluesky", "post_id": uri, "author_id": did,
            "author_username": as_str(author.get("handle")),
            "kind": "reply" if parent else "quote" if quoted else "post",
            "parent_id": parent, "quoted_id": quoted,
            "conversation_id": root if parent else uri, "created_at": created_at,
            "text": as_str(record.get("text")),
            "lang": as_str(langs[0]) if isinstance(langs, list) and langs else None,
            "like_count": as_int(view.get("likeCount")),
            "repost_count": as_int(view.get("repostCount")),
            "reply_count": as_int(view.get("replyCount")),
            "quote_count": as_int(view.get("quoteCount")), "source": "bluesky"}


def unavailable(item) -> str | None:
    """Why a thread item is not a usable threadViewPost (None when it is)."""
    if not isinstance(item, dict):
        return "thread item is not an object"
    kind = str(item.get("$type") or "")
    if kind.endswith("#notFoundPost") or item.get("notFound"):
        return "notFoundPost: deleted or not indexed"
    if kind.endswith("#blockedPost") or item.get("blocked"):
        return "blockedPost: its author blocks or is blocked"
    if not isinstance(item.get("post"), dict):
        return f"unknown thread item {kind or 'without $type'}"
    return None


class LoginFailed(RuntimeError):
    pass


def login_session(pds_url: str, identifier: str, app_password: str,
                  timeout: float = 30.0) -> requests.Session:
    """A session that sends an access token (``com.atproto.server.createSession``).

    Since 2025 the public AppView refuses searchPosts without one; with it, app.bsky.* calls go
    to the account's PDS, which proxies them. The password never reaches an error message."""
    import requests
    session = requests.Session()
    try:
        response = session.post(f"{pds_url.rstrip('/')}/xrpc/com.atproto.server.createSession",
                                 json={"identifier": identifier, "password": app_password},
                                 timeout=timeout)
    except requests.RequestException as exc:
        raise LoginFailed(f"Bluesky login at {pds_url} failed: {type(exc).__name__}") from None
    try:
        token = response.json().get("accessJwt") if response.status_code == 200 else None
    except ValueError:
        token = None
    if not token:
        raise LoginFailed(f"Bluesky login as {identifier} at {pds_url} refused: HTTP "
                          f"{response.status_code}; check BLUESKY_HANDLE / BLUESKY_APP_PASSWORD")
    session.headers["Authorization"] = f"Bearer {token}"
    return session


class BlueskyAdapter(JsonGetter):
    platform = "bluesky"

    def __init__(self, base_url: str = "https://public.api.bsky.app",
                 session: requests.Session | None = None, page_size: int = 100,
                 max_retries: int = 5, sleep: Callable[[float], None] = time.sleep,
                 timeout: float = 30.0):
        super().__init__(base_url, session, max_retries, sleep, timeout)
        self.page_size = max(1, min(page_size, MAX_SEARCH_PAGE))

    def __repr__(self) -> str:
        return f"BlueskyAdapter({self.base_url!r})"

    def _add_post(self, rows: Rows, view, thread_parent=None, thread_root=None) -> bool:
        try:
            rows.posts.append(map_post(view, thread_parent, thread_root))
        except Unusable as exc:
            rows.quarantine(_uri(view), str(exc), exc.raw)
            return False
        rows.accounts.append(map_account(view["author"], rows.observed_at, full=False))
        return True

    def search_posts(self, query: str, since: datetime, until: datetime,
                     limit: int) -> Collected:
        rows = Rows(self.platform)
        params = {"q": query, "since": iso_utc(since), "until": iso_utc(until)}
        cursor, kept = None, 0
        while kept < limit:
            page = {**params, "limit": min(self.page_size, limit - kept)}
            if cursor:
                page["cursor"] = cursor
            try:
                body = self._get(rows, SEARCH, page)
            except Unusable as exc:
                rows.quarantine(f"searchPosts q={query!r} cursor={cursor}", str(exc), exc.raw)
                break
            views = as_list(body.get("posts"))
            for view in views:
                if kept >= limit:
                    break
                kept += self._add_post(rows, view)
            cursor = body.get("cursor")
            if not views or not cursor:
                break
        return rows.collected()

    def comments(self, post_ids: list[str], max_per_post: int) -> Collected:
        rows = Rows(self.platform)
        if max_per_post <= 0:
            return rows.collected()
        depth = min(max_per_post, MAX_THREAD_DEPTH)
        for uri in dict.fromkeys(post_ids):
            try:
                thread = self._get(rows, THREAD, {"uri": uri, "depth": depth,
                                                  "parentHeight": 0}).get("thread")
                reason = unavailable(thread)
                if reason:
                    raise Unusable(f"thread root {reason}", thread)
            except Unusable as exc:
                rows.quarantine(uri, str(exc), exc.raw)
                continue
            root = _uri(thread["post"]) or uri
            queue = deque((reply, root) for reply in as_list(thread.get("replies")))
            taken = 0
            while queue and taken < max_per_post:
                item, parent = queue.popleft()
                reason = unavailable(item)
                if reason:
                    rows.quarantine(_uri(item), reason, item)
                    continue
                taken += self._add_post(rows, item["post"], parent, root)
                here = _uri(item["post"]) or parent
                queue.extend((reply, here) for reply in as_list(item.get("replies")))
        return rows.collected()

    def profiles(self, account_ids: list[str]) -> Collected:
        rows = Rows(self.platform)
        actors = list(dict.fromkeys(a for a in account_ids if a))
        for start in range(0, len(actors), PROFILE_BATCH):
            batch = actors[start:start + PROFILE_BATCH]
            try:
                body = self._get(rows, PROFILES, {"actors": batch})
            except Unusable as exc:
                for actor in batch:
                    rows.quarantine(actor, str(exc), exc.raw)
                continue
            answered: set[str] = set()
            for view in as_list(body.get("profiles")):
                try:
                    rows.accounts.append(map_account(view, rows.observed_at, full=True))
                except Unusable as exc:
                    rows.quarantine(None, str(exc), exc.raw)
                    continue
                answered.update((view.get("did"), view.get("handle")))
            for actor in batch:
                if actor not in answered:
                    rows.quarantine(actor, "profile not returned (deleted, taken down or "
                                           "unknown actor)")
        return rows.collected()
