"""Each way a call's answer can go missing, settled against the server before any retry.

A small plan on the Misskey-mode test server (which hides replies from ``users/notes`` unless
asked and accepts the same renote twice): account 0 has 120 posts, so its history spans two
pages; account 1 replies and quotes; account 2 renotes. "Created but unrecorded" is what a
crash between the server's answer and the ledger commit leaves: the object on the server, no
ledger row. Each test ends with the server holding exactly the plan.
"""

from __future__ import annotations

import polars as pl
import pytest

from botpipeline.clients.sharkey.publisher import PARTS
from botpipeline.transforms.sharkey.plan import plan_publication
from botpipeline_tests.misskey_server import FaultConfig, MisskeyTestServer
from botpipeline_tests.sharkey_expect import (assert_published_exactly, forget, forget_token,
                                              ledger_ids, publish)

CREATES = ("admin/accounts/create", "notes/create", "following/create",
           "notes/reactions/create", "drive/files/create")


@pytest.fixture(scope="module")
def plan():
    posts = [(f"p{i}", "0", None, None, i, f"post {i}") for i in range(120)]
    posts += [("r1", "1", "p0", None, 121, "a reply to post 0"),
              ("r2", "1", "r1", None, 122, "a reply to my reply"),
              ("q1", "1", None, "p1", 123, "quoting post 1"),
              ("rn2", "2", None, "p2", 124, None),
              ("p200", "2", None, None, 125, "a post of my own")]
    frame = pl.DataFrame(posts, schema={"post_id": pl.String, "user_id": pl.String,
                                        "parent_id": pl.String, "original_post_id": pl.String,
                                        "step": pl.Int64, "text": pl.String},
                         orient="row").with_columns(
        pl.col("step").alias("source_line"))
    personas = pl.DataFrame({"user_id": ["0", "1", "2"],
                             "username": ["poster", "replier", "renoter"],
                             "primary_label": ["benign", "trad", "misinfo"],
                             "description": ["a", "b", "c"]})
    follows = pl.DataFrame({"follower_id": ["1", "2"], "followee_id": ["0", "0"]})
    planned = plan_publication(frame, personas, follows)
    kinds = dict(planned.notes.group_by("kind").len().rows())
    assert kinds["reply"] == 2 and kinds["quote"] == 1 and kinds["renote"] >= 2  # + viral
    return planned


@pytest.fixture
def server():
    with MisskeyTestServer(flavor="misskey", rate_limit_scale=0) as srv:
        yield srv


def note_key(plan, post_id: str) -> str:
    return plan.notes.filter(pl.col("post_id") == post_id)["note_key"][0]


def resume_after_forgetting(server, plan, work, *forgotten):
    """Publish everything, lose the given ledger rows, publish again: nothing is created
    twice, and each lost row comes back with the server id it had."""
    publish(server, plan, work)
    before = ledger_ids(work / "ledger.duckdb")
    for kind, key in forgotten:
        forget(work / "ledger.duckdb", kind, key)
    calls = {e: server.request_counts[e] for e in CREATES}
    report = publish(server, plan, work)
    assert not report.outcome.failed and not report.outcome.blocked
    assert {e: server.request_counts[e] for e in CREATES} == calls  # nothing created again
    assert ledger_ids(work / "ledger.duckdb") == before
    assert_published_exactly(server, plan, work / "ledger.duckdb")
    return report


def test_reply_created_but_unrecorded_is_adopted(server, plan, tmp_path):
    # users/notes without withReplies would not show it, and the reply would be posted twice.
    report = resume_after_forgetting(server, plan, tmp_path, ("note", note_key(plan, "r2")))
    assert report.reconciled["note"] == 1


def test_older_unrecorded_note_behind_newer_recorded_ones_is_adopted(server, plan, tmp_path):
    # Post 3 lies behind 116 newer recorded posts of the same account: past the first page,
    # and before any sinceId = newest-recorded window.
    report = resume_after_forgetting(server, plan, tmp_path, ("note", note_key(plan, "p3")))
    assert report.reconciled["note"] == 1


def test_renote_and_quote_created_but_unrecorded_are_adopted(server, plan, tmp_path):
    # Misskey accepts the same renote twice: a blind retry would duplicate it.
    report = resume_after_forgetting(server, plan, tmp_path, ("note", note_key(plan, "rn2")),
                                     ("note", note_key(plan, "q1")))
    assert report.reconciled["note"] == 2


def lose_answer_of(endpoint: str, how: str, nth: int = 1):
    """An on_request hook: the nth call to ``endpoint`` is applied and its answer lost."""
    seen = {"n": 0}

    def hook(seq, called):
        if called == endpoint:
            seen["n"] += 1
            if seen["n"] == nth:
                return how
        return None
    return hook


@pytest.mark.parametrize("how", ["cut_after", "drop_after", "error500_after"])
def test_every_note_renote_and_quote_answer_lost_is_checked_not_repeated(server, plan, tmp_path,
                                                                        how):
    # Every notes/create is applied and its answer lost: each is found on the server (replies,
    # quotes and renotes too) and adopted; a renote retried blindly would be a duplicate.
    server.faults = FaultConfig(rate=1.0, kinds=(how,), endpoints={"notes/create"})
    report = publish(server, plan, tmp_path)
    assert server.fault_counts[how] == plan.notes.height
    assert report.reconciled["note"] + report.reconciled["renote"] == plan.notes.height
    assert not report.outcome.failed
    server.faults = None
    assert_published_exactly(server, plan, tmp_path / "ledger.duckdb")


def test_reaction_answer_lost_is_settled_by_the_server_not_doubled(server, plan, tmp_path):
    server.on_request = lose_answer_of("notes/reactions/create", "drop_after")
    report = publish(server, plan, tmp_path)
    assert server.fault_counts["drop_after"] == 1
    # The retry is answered ALREADY_REACTED: one reaction per (user, note) on the server.
    assert server.request_counts["notes/reactions/create"] == plan.reactions.height + 1
    assert not report.outcome.failed
    assert_published_exactly(server, plan, tmp_path / "ledger.duckdb")


def test_follow_answer_lost_is_settled_by_the_server_not_doubled(server, plan, tmp_path):
    server.on_request = lose_answer_of("following/create", "cut_after")
    report = publish(server, plan, tmp_path)
    assert server.fault_counts["cut_after"] == 1 and not report.outcome.failed
    assert_published_exactly(server, plan, tmp_path / "ledger.duckdb")


@pytest.mark.parametrize("how", ["cut_after", "drop_after", "error500_after"])
def test_account_answer_lost_is_looked_up_and_signed_into(server, plan, tmp_path, how):
    server.on_request = lose_answer_of("admin/accounts/create", how)
    report = publish(server, plan, tmp_path)
    assert server.request_counts["admin/accounts/create"] == 3  # never created twice
    assert report.signins == 1 and report.reconciled["account"] == 1
    assert not report.outcome.failed
    assert_published_exactly(server, plan, tmp_path / "ledger.duckdb")


def test_account_created_but_token_and_row_lost_is_signed_into_on_resume(server, plan,
                                                                         tmp_path):
    publish(server, plan, tmp_path, parts={"accounts"})
    forget_token(tmp_path / "tokens", "replier")
    forget(tmp_path / "ledger.duckdb", "account", "1")
    report = publish(server, plan, tmp_path, parts=set(PARTS))
    assert report.signins == 1 and report.reconciled["account"] == 1
    assert server.request_counts["signin-flow"] == 1
    assert_published_exactly(server, plan, tmp_path / "ledger.duckdb")
