"""The Bluesky and Hacker News collectors against a local replay server (never the internet).

Answers are the real Bluesky samples where we have them (getPostThread, getFollows profiles)
and otherwise scripted in the shapes the APIs document: cursor and Algolia paging, empty pages,
500 HTML pages, 429s, missing fields, deleted and dead comments. Every frame an adapter returns
must already be in the core model.
"""

from __future__ import annotations

import copy
import json
import random
import time
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from botpipeline.clients.platforms.base import QUARANTINE_COLUMNS, CollectionSettings, collect
from botpipeline.clients.platforms.bluesky import PROFILES, SEARCH, THREAD, BlueskyAdapter
from botpipeline.clients.platforms.hackernews import HackerNewsAdapter
from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS
from botpipeline_tests.platform_replay_server import (
    ReplayServer,
    algolia_search,
    cursor_pages,
    html_error,
    json_answer,
    rate_limited,
)

SINCE = datetime(2024, 5, 1)
UNTIL = datetime(2024, 5, 2)
HN_SEARCH = "/search_by_date"


@pytest.fixture
def server():
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def bluesky(server, waits) -> BlueskyAdapter:
    return BlueskyAdapter(server.url, page_size=10, max_retries=3, sleep=waits.append)


@pytest.fixture
def hackernews(server, waits) -> HackerNewsAdapter:
    return HackerNewsAdapter(server.url, hits_per_page=10, max_retries=3, sleep=waits.append)


@pytest.fixture
def thread_sample(real_data) -> dict:
    return json.loads((real_data / "bluesky_atproto_sdk"
                       / "thread_view_post_with_embed_media.json").read_text())


@pytest.fixture
def follows_sample(real_data) -> list[dict]:
    return json.loads((real_data / "bluesky_atproto_sdk" / "get_follows.json").read_text())[
        "follows"]


def assert_core(found) -> None:
    assert found.posts.schema == pl.Schema(POST_COLUMNS)
    assert found.accounts.schema == pl.Schema(ACCOUNT_COLUMNS)
    assert found.quarantine.schema == pl.Schema(QUARANTINE_COLUMNS)


def reasons(found) -> dict[str, str]:
    return dict(zip(found.quarantine["item_id"], found.quarantine["reason"], strict=True))


# ------------------------------------------------------------------------ Bluesky helpers
def bsky_post(name: str, *, did: str | None = None, likes: int = 0, reposts: int = 0,
              replies: int = 0, created: str = "2024-05-01T12:00:00.000Z",
              parent: str | None = None, root: str | None = None) -> dict:
    """A postView as searchPosts / getPostThread return it."""
    did = did or f"did:plc:{name}author"
    record = {"$type": "app.bsky.feed.post", "text": f"text of {name}", "createdAt": created,
              "langs": ["en", "de"]}
    if parent:
        record["reply"] = {"parent": {"uri": parent, "cid": "bafyparent"},
                           "root": {"uri": root or parent, "cid": "bafyroot"}}
    return {"uri": bsky_uri(name, did), "cid": f"bafy{name}",
            "author": {"did": did, "handle": f"{name}.bsky.social", "displayName": name.title(),
                       "avatar": "https://cdn.bsky.app/img/avatar/x@jpeg", "labels": []},
            "record": record, "replyCount": replies, "repostCount": reposts, "likeCount": likes,
            "quoteCount": 1, "indexedAt": created, "labels": []}


def bsky_uri(name: str, did: str | None = None) -> str:
    return f"at://{did or f'did:plc:{name}author'}/app.bsky.feed.post/{name}"


def thread_item(post: dict, *replies: dict) -> dict:
    return {"$type": "app.bsky.feed.defs#threadViewPost", "post": post, "replies": list(replies)}


def profile_for(did: str, template: dict, n: int) -> dict:
    """A profileViewDetailed: a real getFollows profile with the counts getProfiles adds."""
    own = did == template["did"]
    handle = template["handle"] if own else f"{did.rsplit(':', 1)[-1]}.bsky.social"
    return {**template, "did": did, "handle": handle,
            "followersCount": 10 * n, "followsCount": n, "postsCount": 100 + n}


def profiles_answer(follows: list[dict], missing: frozenset[str] = frozenset()):
    def answer(request):
        return json_answer({"profiles": [profile_for(did, follows[i % len(follows)], i)
                                         for i, did in enumerate(request.query["actors"])
                                         if did not in missing]})
    return answer


# ------------------------------------------------------------------------ Bluesky tests
def test_bluesky_search_pages_with_the_cursor_until_the_limit(server, bluesky):
    posts = [bsky_post(f"p{i:02d}") for i in range(40)]
    server.route(SEARCH, cursor_pages(posts, "posts"), repeat=True)
    since = datetime(2024, 5, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    found = bluesky.search_posts("bots", since, UNTIL, limit=25)
    assert_core(found)
    assert found.posts["post_id"].to_list() == [p["uri"] for p in posts[:25]]
    sent = server.requests_to(SEARCH)
    assert [r.one("limit") for r in sent] == ["10", "10", "5"]
    assert [r.one("cursor") for r in sent] == [None, "10", "20"]
    assert {(r.one("q"), r.one("since"), r.one("until")) for r in sent} == {
        ("bots", "2024-05-01T00:00:00.000Z", "2024-05-02T00:00:00.000Z")}
    assert found.calls == 3 and not server.unmatched
    first = found.posts.row(0, named=True)
    assert first | {"created_at": None} == {
        "platform": "bluesky", "post_id": bsky_uri("p00"), "author_id": "did:plc:p00author",
        "author_username": "p00.bsky.social", "kind": "post", "parent_id": None,
        "reposted_id": None, "quoted_id": None, "conversation_id": bsky_uri("p00"),
        "created_at": None, "text": "text of p00", "lang": "en", "like_count": 0,
        "repost_count": 0, "reply_count": 0, "quote_count": 1, "source": "bluesky",
        "source_step": None}
    assert first["created_at"] == datetime(2024, 5, 1, 12)
    # Authors seen in posts are stubs: no created_at, so collect() will fetch their profiles.
    assert found.accounts.height == 25 and found.accounts["created_at"].null_count() == 25


def test_bluesky_paging_ends_at_an_empty_page_or_without_a_cursor(server, bluesky):
    server.route(SEARCH, json_answer({"posts": [bsky_post("a"), bsky_post("b")], "cursor": "x"}),
                 json_answer({"posts": [], "cursor": "y"}), when={"q": "empty"})
    server.route(SEARCH, json_answer({"posts": [bsky_post("c")]}), when={"q": "last"})
    assert bluesky.search_posts("empty", SINCE, UNTIL, 100).posts.height == 2
    assert bluesky.search_posts("last", SINCE, UNTIL, 100).posts.height == 1
    assert [r.one("cursor") for r in server.requests_to(SEARCH)] == [None, "x", None]
    assert not server.unmatched


def test_bluesky_real_post_view_is_a_quote(server, bluesky, thread_sample):
    view = thread_sample["thread"]["post"]
    server.route(SEARCH, json_answer({"posts": [view]}))
    found = bluesky.search_posts("test", SINCE, UNTIL, 10)
    post = found.posts.row(0, named=True)
    assert post["kind"] == "quote" and post["parent_id"] is None
    assert post["quoted_id"] == ("at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/"
                                 "3kahesw26il2z")
    assert post["conversation_id"] == post["post_id"] == view["uri"]
    assert post["created_at"] == datetime(2023, 9, 28, 12, 49, 36, 735000)
    assert (post["author_id"], post["author_username"], post["lang"], post["text"]) == (
        "did:plc:kvwvcn5iqfooopmyzvb4qzba", "test.marshal.dev", "en", "")
    account = found.accounts.row(0, named=True)
    assert (account["display_name"], account["default_profile_image"]) == ("Python SDK", False)


def test_bluesky_real_thread_sample_without_replies(server, bluesky, real_data):
    sample = real_data / "bluesky_atproto_sdk" / "thread_view_post_with_embed_media.json"
    server.route(THREAD, html_error(502), json_answer(json.loads(sample.read_text())))
    uri = "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kaheyt6vpc22"
    found = bluesky.comments([uri], max_per_post=100)
    assert_core(found)
    assert found.posts.height == 0 and found.quarantine.height == 0 and found.calls == 2
    assert server.requests_to(THREAD)[-1].query == {"uri": [uri], "depth": ["100"],
                                                    "parentHeight": ["0"]}


def _thread_from_sample(sample: dict) -> tuple[dict, dict[str, str]]:
    """The real thread with replies made from its real post view; expected parents by uri."""
    thread = copy.deepcopy(sample)
    root = thread["thread"]["post"]
    root_uri = root["uri"]

    def reply(name: str, parent: str, created: str, keep_embed: bool = False) -> dict:
        view = copy.deepcopy(root)
        view["uri"] = f"at://did:plc:{name}/app.bsky.feed.post/{name}"
        view["author"] |= {"did": f"did:plc:{name}", "handle": f"{name}.test"}
        view["record"] |= {"text": f"reply {name}", "createdAt": created,
                           "reply": {"root": {"uri": root_uri, "cid": root["cid"]},
                                     "parent": {"uri": parent, "cid": "bafyparent"}}}
        if not keep_embed:
            del view["record"]["embed"], view["embed"]
        return view

    r1 = reply("r1", root_uri, "2023-09-28T13:00:00")                   # naive: UTC
    r1a = reply("r1a", r1["uri"], "2023-09-28T13:05:00Z")
    r1ai = reply("r1ai", r1a["uri"], "2023-09-28T13:06:00Z")
    r2 = reply("r2", root_uri, "2023-09-28T15:00:00+02:00", keep_embed=True)
    r3 = reply("r3", root_uri, "yesterday-ish")
    thread["thread"]["replies"] = [
        thread_item(r1, thread_item(r1a, thread_item(r1ai)),
                    {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://gone/1",
                     "notFound": True}),
        {"$type": "app.bsky.feed.defs#blockedPost", "uri": "at://blocked/1", "blocked": True,
         "author": {"did": "did:plc:blocker", "viewer": {"blockedBy": True}}},
        thread_item(r2), thread_item(r3)]
    parents = {r1["uri"]: root_uri, r2["uri"]: root_uri, r1a["uri"]: r1["uri"],
               r1ai["uri"]: r1a["uri"]}
    return thread, parents


def test_bluesky_thread_flattened_into_replies_with_their_parents(server, bluesky,
                                                                  thread_sample):
    thread, parents = _thread_from_sample(thread_sample)
    root_uri = thread["thread"]["post"]["uri"]
    server.route(THREAD, json_answer(thread), repeat=True)
    found = bluesky.comments([root_uri], max_per_post=100)
    assert_core(found)
    replies = found.posts
    assert replies["post_id"].to_list() == list(parents)  # breadth first
    assert dict(zip(replies["post_id"], replies["parent_id"], strict=True)) == parents
    assert set(replies["kind"]) == {"reply"} and set(replies["conversation_id"]) == {root_uri}
    times = dict(zip(replies["post_id"], replies["created_at"], strict=True))
    assert times["at://did:plc:r1/app.bsky.feed.post/r1"] == datetime(2023, 9, 28, 13)
    assert times["at://did:plc:r2/app.bsky.feed.post/r2"] == datetime(2023, 9, 28, 13)
    quoted = dict(zip(replies["post_id"], replies["quoted_id"], strict=True))
    assert quoted["at://did:plc:r2/app.bsky.feed.post/r2"].endswith("/3kahesw26il2z")
    assert reasons(found) == {
        "at://blocked/1": "blockedPost: its author blocks or is blocked",
        "at://gone/1": "notFoundPost: deleted or not indexed",
        "at://did:plc:r3/app.bsky.feed.post/r3": "unparseable record.createdAt"}
    raw = json.loads(found.quarantine.filter(pl.col("item_id").str.ends_with("r3"))["raw"][0])
    assert raw["record"]["createdAt"] == "yesterday-ish"
    capped = bluesky.comments([root_uri], max_per_post=2)
    assert capped.posts["post_id"].to_list() == list(parents)[:2]


def test_bluesky_thread_errors_are_quarantined_per_post(server, bluesky, waits):
    server.route(THREAD, json_answer({"error": "NotFound", "message": "Post not found: x"}, 400),
                 when={"uri": "at://x/1"})
    server.route(THREAD, json_answer({"thread": {"$type": "app.bsky.feed.defs#notFoundPost",
                                                 "uri": "at://x/2", "notFound": True}}),
                 when={"uri": "at://x/3"})
    server.route(THREAD, html_error(500), repeat=True, when={"uri": "at://x/4"})
    ok = bsky_post("ok")
    server.route(THREAD, json_answer({"thread": thread_item(ok, thread_item(
        bsky_post("child", parent=ok["uri"])))}), when={"uri": "at://x/5"})
    found = bluesky.comments(["at://x/1", "at://x/3", "at://x/4", "at://x/5"], 10)
    assert found.posts["post_id"].to_list() == [bsky_uri("child")]
    assert reasons(found) == {
        "at://x/1": f"HTTP 400 from {THREAD} (NotFound)",
        "at://x/3": "thread root notFoundPost: deleted or not indexed",
        "at://x/4": f"HTTP 500 from {THREAD}"}
    assert "Internal Server Error" in found.quarantine["raw"][2]
    assert len(waits) == 3 and found.calls == 1 + 1 + 4 + 1


def test_bluesky_items_missing_fields_are_quarantined_with_reasons(server, bluesky):
    good, naive = bsky_post("good"), bsky_post("naive", created="2024-05-01T23:30:00.5")
    no_did, no_record, bad_time = bsky_post("nodid"), bsky_post("norecord"), bsky_post("bad")
    no_did["author"].pop("did")
    no_record.pop("record")
    bad_time["record"]["createdAt"] = "0000-00-00T00:00:00Z"
    no_uri = bsky_post("nouri")
    no_uri.pop("uri")
    page = [good, no_uri, no_did, no_record, bad_time, naive, "garbage"]
    server.route(SEARCH, json_answer({"posts": page}))
    found = bluesky.search_posts("q", SINCE, UNTIL, 100)
    assert_core(found)
    assert found.posts["post_id"].to_list() == [good["uri"], naive["uri"]]
    assert found.posts["created_at"][1] == datetime(2024, 5, 1, 23, 30, 0, 500000)
    assert found.quarantine["reason"].to_list() == [
        "missing uri", "missing author.did", "missing record",
        "unparseable record.createdAt", "post view is not an object"]
    assert found.quarantine["item_id"].to_list() == [
        None, no_did["uri"], no_record["uri"], bad_time["uri"], None]
    assert json.loads(found.quarantine["raw"][1]) == no_did


@pytest.mark.parametrize("failure", [rate_limited(retry_after=0), rate_limited(reset=time.time()),
                                     html_error(500), html_error(503)],
                         ids=["429-retry-after", "429-reset", "500", "503"])
def test_bluesky_retries_then_succeeds(server, bluesky, waits, failure):
    server.route(SEARCH, failure, json_answer({"posts": [bsky_post("a")]}))
    found = bluesky.search_posts("q", SINCE, UNTIL, 5)
    assert found.posts.height == 1 and found.quarantine.height == 0 and found.calls == 2
    assert len(waits) == 1 and 0 <= waits[0] <= 2


def test_bluesky_search_that_keeps_failing_is_quarantined(server, bluesky, waits):
    server.route(SEARCH, json_answer({"posts": [bsky_post("a")], "cursor": "1"}),
                 html_error(500), repeat=True)
    found = bluesky.search_posts("q", SINCE, UNTIL, 50)
    assert found.posts.height == 1 and found.calls == 1 + 4 and len(waits) == 3
    assert found.quarantine["item_id"].to_list() == ["searchPosts q='q' cursor=1"]
    assert found.quarantine["reason"].to_list() == [f"HTTP 500 from {SEARCH}"]


def test_bluesky_search_forbidden_without_login_is_quarantined(server, bluesky, waits):
    # public.api.bsky.app answers unauthenticated searchPosts with an HTML 403 (atproto#3423).
    server.route(SEARCH, html_error(403))
    found = bluesky.search_posts("q", SINCE, UNTIL, 50)
    assert found.posts.height == 0 and found.calls == 1 and waits == []
    assert reasons(found) == {"searchPosts q='q' cursor=None": f"HTTP 403 from {SEARCH}"}


def test_bluesky_profiles_are_fetched_in_batches_of_25(server, bluesky, follows_sample):
    real = follows_sample[0]
    dids = [real["did"]] + [f"did:plc:user{i:02d}" for i in range(59)] + [real["did"]]
    server.route(PROFILES, profiles_answer(follows_sample, frozenset({"did:plc:user07"})),
                 repeat=True)
    found = bluesky.profiles(dids)
    assert_core(found)
    batches = [r.query["actors"] for r in server.requests_to(PROFILES)]
    assert [len(b) for b in batches] == [25, 25, 10]
    assert sum(batches, []) == list(dict.fromkeys(dids))
    assert found.accounts.height == 59
    assert reasons(found) == {
        "did:plc:user07": "profile not returned (deleted, taken down or unknown actor)"}
    row = found.accounts.filter(pl.col("account_id") == real["did"]).row(0, named=True)
    assert {k: row[k] for k in ("username", "display_name", "description", "created_at",
                                "followers_count", "following_count", "post_count",
                                "default_profile_image", "source")} == {
        "username": "why.bsky.team", "display_name": "Why", "description": real["description"],
        "created_at": datetime(2022, 11, 17, 1, 4, 43, 624000), "followers_count": 0,
        "following_count": 0, "post_count": 100, "default_profile_image": False,
        "source": "bluesky"}
    now = datetime.now(UTC).replace(tzinfo=None)
    assert found.accounts["observed_at"].is_between(now - timedelta(minutes=1), now).all()


def test_bluesky_profile_naive_created_at_is_utc(server, bluesky, follows_sample):
    profile = profile_for("did:plc:naive", follows_sample[1], 3) | {
        "createdAt": "2023-01-02T03:04:05", "avatar": None}
    server.route(PROFILES, json_answer({"profiles": [profile]}))
    row = bluesky.profiles(["did:plc:naive"]).accounts.row(0, named=True)
    assert row["created_at"] == datetime(2023, 1, 2, 3, 4, 5)
    assert (row["followers_count"], row["following_count"], row["post_count"]) == (30, 3, 103)
    assert row["default_profile_image"] is True


def test_collect_over_bluesky(server, follows_sample, waits):
    adapter = BlueskyAdapter(server.url, page_size=4, sleep=waits.append)
    likes = [50, 5, 30, 0, 12, 9, 100, 20]
    posts = [bsky_post(f"s{i}", did=f"did:plc:author{i % 3}", likes=n, replies=i % 2)
             for i, n in enumerate(likes)]
    posts.append(bsky_post("bigreply", likes=10_000, parent=posts[3]["uri"]))
    server.route(SEARCH, cursor_pages(posts, "posts"), repeat=True)

    def thread(request):
        uri = request.one("uri")
        tag = uri.rsplit("/", 1)[-1]
        replies = [thread_item(bsky_post(f"{tag}c{j}", did=f"did:plc:commenter{j}", parent=uri))
                   for j in range(4)]
        return json_answer({"thread": thread_item(bsky_post(tag), *replies)})

    server.route(THREAD, thread, repeat=True)
    server.route(PROFILES, profiles_answer(follows_sample), repeat=True)
    settings = CollectionSettings(queries=("bots", "spam"), limit=20,
                                  max_posts_for_comment_harvest=3, max_comments_per_post=2)
    found, top = collect(adapter, settings, SINCE, UNTIL)
    assert_core(found)
    # Seed 003's score: (likes + reposts×2 + replies×1.5) / 1000 ≥ 0.01, best 3, no replies.
    assert top["post_id"].to_list() == [posts[6]["uri"], posts[0]["uri"], posts[2]["uri"]]
    assert [r.one("uri") for r in server.requests_to(THREAD)] == top["post_id"].to_list()
    replies = found.posts.filter(pl.col("kind") == "reply", pl.col("author_id").str.contains(
        "commenter"))
    assert replies.group_by("parent_id").len()["len"].to_list() == [2, 2, 2]
    assert set(replies["parent_id"]) == set(top["post_id"])
    assert found.posts.height == len(posts) + 6 and found.posts["post_id"].is_unique().all()
    asked = sum((r.query["actors"] for r in server.requests_to(PROFILES)), [])
    authors = sorted(set(found.posts["author_id"]))
    assert sorted(asked) == authors and {"did:plc:commenter0", "did:plc:commenter1"} <= set(asked)
    assert found.accounts.height == len(authors)
    assert found.accounts["created_at"].null_count() == 0
    assert not server.unmatched


# ------------------------------------------------------------------------ Hacker News helpers
def hn_story(i: int, created_at_i: int, points: int = 1, comments: int = 0,
             story_text: str | None = None) -> dict:
    """A search_by_date hit, with the fields Algolia returns for stories."""
    return {"objectID": str(i), "title": f"Story {i}", "url": f"https://example.com/{i}",
            "author": f"user{i % 7}", "points": points, "num_comments": comments,
            "story_text": story_text, "story_id": i, "created_at_i": created_at_i,
            "created_at": datetime.fromtimestamp(created_at_i, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"), "_tags": ["story", f"author_user{i % 7}", f"story_{i}"]}


def hn_item(item_id: int, story_id: int, parent_id: int, author: str | None,
            text: str | None, *children: dict, kind: str = "comment") -> dict:
    """A node of /items/{id}: Algolia's whole-tree answer."""
    return {"id": item_id, "created_at": "2024-05-01T10:00:00.000Z", "created_at_i": 1714557600,
            "type": kind, "author": author, "title": None, "url": None, "text": text,
            "points": None, "parent_id": parent_id, "story_id": story_id,
            "options": [], "children": list(children)}


def hn_user(username: str, created_at_i: int = 1160418111) -> dict:
    return {"id": username, "username": username, "about": "Bug fixer &amp; <i>writer</i>.",
            "karma": 157316, "created_at": "2006-10-09T18:21:51.000Z",
            "created_at_i": created_at_i, "submission_count": 42, "comment_count": 7,
            "objectID": username}


S, U = int(SINCE.replace(tzinfo=UTC).timestamp()), int(UNTIL.replace(tzinfo=UTC).timestamp())


def window_of(request) -> tuple[int, int]:
    low, high = request.one("numericFilters").split(",")
    return int(low.split(">=")[1]), int(high.split("<")[1])


# ------------------------------------------------------------------------ Hacker News tests
def test_hackernews_search_pages_until_the_limit(server, hackernews):
    stories = [hn_story(i, S + 60 * i) for i in range(40)]
    server.route(HN_SEARCH, algolia_search(stories), repeat=True)
    found = hackernews.search_posts("rust", SINCE, UNTIL, limit=25)
    assert_core(found)
    newest = sorted(stories, key=lambda s: -s["created_at_i"])[:25]
    assert found.posts["post_id"].to_list() == [s["objectID"] for s in newest]
    sent = server.requests_to(HN_SEARCH)
    assert [(r.one("page"), r.one("hitsPerPage")) for r in sent] == [("0", "10"), ("1", "10"),
                                                                     ("2", "10")]
    assert {(r.one("query"), r.one("tags"), r.one("numericFilters")) for r in sent} == {
        ("rust", "story", f"created_at_i>={S},created_at_i<{U}")}
    story = found.posts.row(0, named=True)
    assert story == {
        "platform": "hackernews", "post_id": "39", "author_id": "user4",
        "author_username": "user4", "kind": "post", "parent_id": None, "reposted_id": None,
        "quoted_id": None, "conversation_id": "39", "created_at": datetime(2024, 5, 1, 0, 39),
        "text": "Story 39\n\nhttps://example.com/39", "lang": None, "like_count": 1,
        "repost_count": None, "reply_count": 0, "quote_count": None, "source": "hackernews",
        "source_step": None}
    assert found.accounts["created_at"].null_count() == found.accounts.height == 7


def test_hackernews_story_text_is_plain(server, hackernews):
    server.route(HN_SEARCH, algolia_search([
        hn_story(1, S, story_text="Is it &quot;fine&quot;?<p>See <a href=\"x\">this</a>.")]))
    text = hackernews.search_posts("", SINCE, UNTIL, 5).posts["text"][0]
    assert text == 'Story 1\n\nIs it "fine"?\n\nSee this.'


def test_hackernews_empty_page_ends_paging(server, hackernews):
    first = [hn_story(i, S + i) for i in range(10)]
    server.route(HN_SEARCH, json_answer({"hits": first, "nbHits": 40, "nbPages": 4, "page": 0}),
                 json_answer({"hits": [], "nbHits": 40, "nbPages": 4, "page": 1}))
    found = hackernews.search_posts("q", SINCE, UNTIL, 100)
    assert found.posts.height == 10 and found.calls == 2 and not server.unmatched


def test_hackernews_windows_split_until_each_fits(server, waits):
    rng = random.Random(3)
    stories = [hn_story(i, S + rng.randrange(U - S), points=i % 50) for i in range(2_500)]
    server.route(HN_SEARCH, algolia_search(stories), repeat=True)
    adapter = HackerNewsAdapter(server.url, sleep=waits.append)
    found = adapter.search_posts("q", SINCE, UNTIL, limit=10_000)
    assert_core(found)
    assert found.posts.height == 2_500
    assert sorted(found.posts["post_id"].cast(pl.Int64)) == list(range(2_500))
    assert found.posts["created_at"].is_sorted(descending=True)  # newest window first
    windows = [window_of(r) for r in server.requests_to(HN_SEARCH)]
    leaves = sorted(w for w in set(windows)
                    if not any(o != w and w[0] <= o[0] and o[1] <= w[1] for o in windows))
    assert leaves[0][0] == S and leaves[-1][1] == U
    assert all(a[1] == b[0] for a, b in zip(leaves, leaves[1:], strict=False))  # disjoint, no gap
    per_leaf = [sum(lo <= s["created_at_i"] < hi for s in stories) for lo, hi in leaves]
    assert sum(per_leaf) == 2_500 and max(per_leaf) <= 1000 and len(leaves) > 2
    assert all(r.one("hitsPerPage") == "1000" for r in server.requests_to(HN_SEARCH))


def test_hackernews_no_split_when_the_limit_is_reachable(server, hackernews):
    stories = [hn_story(i, S + i) for i in range(2_500)]
    server.route(HN_SEARCH, algolia_search(stories), repeat=True)
    adapter = HackerNewsAdapter(server.url, sleep=lambda s: None)
    found = adapter.search_posts("q", SINCE, UNTIL, limit=300)
    assert found.posts["post_id"].to_list() == [str(i) for i in range(2_499, 2_199, -1)]
    assert found.calls == 1 and server.requests_to(HN_SEARCH)[0].one("hitsPerPage") == "300"


def test_hackernews_one_second_over_the_cap_is_quarantined(server):
    stories = [hn_story(i, S + 5) for i in range(1_200)]
    server.route(HN_SEARCH, algolia_search(stories), repeat=True)
    adapter = HackerNewsAdapter(server.url, sleep=lambda s: None)
    found = adapter.search_posts("q", SINCE, SINCE + timedelta(seconds=16), limit=5_000)
    assert found.posts.height == 1000
    assert found.quarantine["reason"].to_list() == [
        "more stories in one second than Algolia pages to (1000); the rest are unreachable"]
    assert json.loads(found.quarantine["raw"][0])["nbHits"] == 1200
    assert found.quarantine["item_id"][0] == f"search_by_date query='q' window=[{S + 5},{S + 6})"


def _tree() -> dict:
    story = 100
    return {**hn_item(story, story, None, "op", None, kind="story"), "title": "Ask HN",
            "children": [
                hn_item(101, story, story, "alice", "<p>Hello &amp; welcome</p>",
                        hn_item(102, story, 101, None, None,              # deleted
                                hn_item(103, story, 102, "carol", "still here"))),
                hn_item(104, story, story, "bob", None),                  # dead: no text
                hn_item(105, story, story, "dave", "top level",
                        hn_item(106, story, 105, "erin", "nested")),
                hn_item(107, story, story, "op", "Option A", kind="pollopt")]}


@pytest.mark.parametrize("first", [None, rate_limited(retry_after=0), html_error(500)],
                         ids=["ok", "429", "500"])
def test_hackernews_comment_tree_with_deleted_and_dead_items(server, hackernews, waits, first):
    server.route("/items/100", *([first] if first else []), json_answer(_tree()), repeat=True)
    found = hackernews.comments(["100"], max_per_post=100)
    assert_core(found)
    posts = found.posts
    assert posts["post_id"].to_list() == ["101", "105", "106", "103"]  # breadth first
    assert dict(zip(posts["post_id"], posts["parent_id"], strict=True)) == {
        "101": "100", "105": "100", "106": "105", "103": "102"}
    assert set(posts["kind"]) == {"reply"} and set(posts["conversation_id"]) == {"100"}
    assert posts["text"][0] == "Hello & welcome"
    assert posts["created_at"][0] == datetime(2024, 5, 1, 10)
    assert reasons(found) == {"102": "deleted or dead comment (no author and text)",
                              "104": "deleted or dead comment (no text)",
                              "107": "pollopt item in the comment tree, not a comment"}
    assert len(waits) == (1 if first else 0)
    capped = hackernews.comments(["100"], max_per_post=2)
    assert capped.posts["post_id"].to_list() == ["101", "105"]


def test_hackernews_missing_story_fields_and_missing_items(server, hackernews):
    no_author, no_time = hn_story(2, S), hn_story(3, S)
    no_author["author"] = None
    no_time.pop("created_at_i")
    server.route(HN_SEARCH, json_answer({"hits": [hn_story(1, S), no_author, no_time],
                                         "nbHits": 3, "nbPages": 1}))
    server.route("/items/9", json_answer({"status": 404, "error": "Not Found"}, 404))
    found = hackernews.search_posts("q", SINCE, UNTIL, 10) + hackernews.comments(["9"], 10)
    assert found.posts["post_id"].to_list() == ["1"]
    assert reasons(found) == {"2": "missing author", "3": "missing or bad created_at_i",
                              "9": "HTTP 404 from /items/9 (Not Found)"}


def test_hackernews_profiles(server, hackernews, waits):
    server.route("/users/pg", rate_limited(reset=time.time()), json_answer(hn_user("pg")))
    server.route("/users/ghost", json_answer({"status": 404, "error": "Not Found"}, 404))
    found = hackernews.profiles(["pg", "ghost", "pg"])
    assert_core(found)
    assert found.accounts.drop("observed_at").row(0, named=True) == {
        "platform": "hackernews", "account_id": "pg", "username": "pg", "display_name": None,
        "description": "Bug fixer & writer.", "created_at": datetime(2006, 10, 9, 18, 21, 51),
        "followers_count": None, "following_count": None, "post_count": 42,
        "listed_count": None, "like_count": None, "verified": None, "protected": None,
        "default_profile_image": None, "source": "hackernews"}
    assert reasons(found) == {"ghost": "HTTP 404 from /users/ghost (Not Found)"}
    assert len(waits) == 1 and found.calls == 3


def test_hackernews_search_retries_then_succeeds(server, hackernews, waits):
    server.route(HN_SEARCH, rate_limited(retry_after=0), html_error(500),
                 algolia_search([hn_story(1, S)]))
    assert hackernews.search_posts("q", SINCE, UNTIL, 10).posts.height == 1
    assert len(waits) == 2 and waits[0] == 0


def test_collect_over_hackernews(server, waits):
    adapter = HackerNewsAdapter(server.url, hits_per_page=4, sleep=waits.append)
    points = [50, 5, 30, 0, 12, 9, 100, 20, 3, 1]
    stories = [hn_story(i, S + 100 * i, points=p, comments=i % 2) for i, p in enumerate(points)]
    server.route(HN_SEARCH, algolia_search(stories), repeat=True)
    items = {}
    for story in stories:
        sid = int(story["objectID"])
        comments = [hn_item(1000 * (sid + 1) + j, sid, sid, f"commenter{j}", f"comment {j}")
                    for j in range(5)]
        items[sid] = server.route(f"/items/{sid}", json_answer(
            {**hn_item(sid, sid, None, story["author"], None, *comments, kind="story")}))
    settings = CollectionSettings(queries=("rust", "go"), limit=10,
                                  max_posts_for_comment_harvest=3, max_comments_per_post=3)
    authors = {s["author"] for s in stories} | {f"commenter{j}" for j in range(3)}
    for name in authors:
        server.route(f"/users/{name}", json_answer(hn_user(name)))
    found, top = collect(adapter, settings, SINCE, UNTIL)
    assert_core(found)
    assert top["post_id"].to_list() == ["6", "0", "2"]
    assert sorted(sid for sid, route in items.items() if route.served) == [0, 2, 6]
    replies = found.posts.filter(pl.col("kind") == "reply")
    assert sorted(replies.group_by("conversation_id").len().rows()) == [
        ("0", 3), ("2", 3), ("6", 3)]
    assert found.posts.height == 10 + 9 and found.posts["post_id"].is_unique().all()
    asked = {r.path.removeprefix("/users/") for r in server.requests if r.path.startswith("/u")}
    assert asked == authors and not server.unmatched
    assert found.accounts.height == len(authors)
    assert found.accounts["created_at"].null_count() == 0
