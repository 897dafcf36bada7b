"""sharkey/threads: the shipped sample's scored conversations on the sandbox, pseudonymously.

One date of the shipped sample goes through the daily pipeline and the learned model, then its
threads with flagged accounts are published to the Misskey-mode test server through the asset:
replies under their parents, flagged accounts marked as bots with their scores, and not one real
screen name anywhere on the server. New scores update profiles, never notes; a publish killed
at seeded moments and restarted ends with the plan exactly.
"""

from __future__ import annotations

import json
import random
import re

import dagster as dg
import duckdb
import polars as pl
import pytest

from botpipeline.definitions import defs
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.sharkey.threads import ThreadPublishConfig, read_inputs
from botpipeline.transforms.sharkey.threads import (ThreadSettings, plan_threads, pseudonym,
                                                     rewrite, select_threads)
from botpipeline_tests.conftest import copy_shipped_sample
from botpipeline_tests.misskey_server import MisskeyTestServer
from botpipeline_tests.sharkey_expect import (KillSchedule, assert_published_exactly,
                                            publish_until_done)

DATE = "2021-01-03"
SALT = "test-salt-not-a-secret"
PARTS = ("accounts", "profiles", "notes")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The date through the daily pipeline, a learned model and its scores."""
    root = tmp_path_factory.mktemp("threads")
    copy_shipped_sample(root / "data", (DATE,))
    env = pytest.MonkeyPatch()
    env.setenv("BOTPIPELINE_DATA_DIR", str(root / "data"))
    env.setenv("BOTPIPELINE_DUCKDB", str(root / "data" / "botpipeline.duckdb"))
    env.setenv("SHARKEY_TOKEN_STORE", str(root / "tokens"))
    env.setenv("SHARKEY_PSEUDONYM_SALT", SALT)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("label_sets", ["generated_sample"])
        for job, key, config in (
                ("daily_pipeline", DATE, None),
                ("bot_model", None, {"ops": {"models__bot_classifier": {
                    "config": {"model": "logistic_profile"}}}}),
                ("learned_scores", DATE, None)):
            assert defs.resolve_job_def(job).execute_in_process(
                partition_key=key, instance=instance, run_config=config).success
        yield root, instance
    env.undo()


@pytest.fixture
def server():
    with MisskeyTestServer(flavor="misskey", rate_limit_scale=0) as srv:
        yield srv


def publish(scored, server, monkeypatch, **config):
    _, instance = scored
    monkeypatch.setenv("SHARKEY_URL", server.url)
    monkeypatch.setenv("SHARKEY_ADMIN_TOKEN", server.admin_token)
    result = defs.resolve_job_def("sharkey_threads").execute_in_process(
        partition_key=DATE, instance=instance, run_config={
            "ops": {"sharkey__threads": {"config": config}}} if config else None)
    assert result.success
    meta = {k: v.value for e in result.get_asset_materialization_events()
            for k, v in e.materialization.metadata.items()}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    return meta, checks


def the_plan(settings: ThreadSettings):
    with Warehouse().get_connection() as con:
        inputs = read_inputs(con, DATE, {t.qualified for t in Warehouse().lake.tables()})
    chosen = select_threads(inputs["posts"], inputs["threads"], inputs["verdicts"], settings)
    return plan_threads(inputs["posts"], chosen, inputs["accounts"], inputs["verdicts"], DATE,
                        settings), inputs


def real_names(root) -> set[str]:
    """Every screen name the sample holds: authors, snapshots and mentioned names."""
    with duckdb.connect(str(root / "data" / "botpipeline.duckdb"), read_only=True) as con:
        names = {r[0] for r in con.execute(
            "SELECT DISTINCT screen_name FROM raw.account_snapshots "
            "UNION SELECT DISTINCT in_reply_to_screen_name FROM raw.tweets").fetchall() if r[0]}
        texts = [r[0] for r in con.execute("SELECT text FROM core.posts").fetchall() if r[0]]
    names |= {m for t in texts for m in re.findall(r"@(\w+)", t)}
    return names


def server_state(server) -> str:
    return json.dumps([server.users(), server.notes(), server.files()], ensure_ascii=False)


def test_threads_with_flagged_accounts_published_pseudonymously(scored, server, monkeypatch):
    root, _ = scored
    meta, checks = publish(scored, server, monkeypatch)
    assert checks == {"notes_count_matches_ledger": True, "profiles_show_the_verdicts": True,
                      "no_real_names_in_notes": True, "threading_matches_conversations": True}
    (plan, mapping), _ = the_plan(ThreadPublishConfig().settings(SALT))
    assert meta["dagster/row_count"] == plan.notes.height > 0
    assert meta["accounts_marked_bot"] >= 1
    ledger = next((root / "data" / "sharkey").rglob("threads/ledger.duckdb"))
    assert_published_exactly(server, plan, ledger, parts=PARTS)  # replies under parents
    users = {u["username"]: u for u in server.users()}
    for row in mapping.iter_rows(named=True):
        user = users[row["username"]]
        assert user["isBot"] == row["is_bot"]
        assert "Flagged by:" in user["description"] and "13-signal score" in user["description"]
    assert all(n["localOnly"] for n in server.notes())
    kinds = dict(plan.notes.group_by("kind").len().iter_rows())
    assert kinds.get("reply", 0) > 0

    # Not one real screen name anywhere the server keeps: users, notes, files.
    state = server_state(server).lower()
    names = real_names(root)
    assert len(names) > 50
    leaked = [n for n in names if re.search(rf"(?<![a-z0-9_]){re.escape(n.lower())}"
                                            rf"(?![a-z0-9_])", state)]
    assert leaked == []
    # The mapping is in the lake only (the analysts' table), never on the server.
    with duckdb.connect(str(root / "data" / "botpipeline.duckdb"), read_only=True) as con:
        lake = con.execute("SELECT count(*) FROM sharkey.thread_accounts WHERE real_username "
                           "IS NOT NULL AND collection_date = ?", [DATE]).fetchone()[0]
    assert lake == mapping.filter(pl.col("real_username").is_not_null()).height > 0
    assert SALT not in server_state(server)


def test_new_scores_update_profiles_never_notes(scored, server, monkeypatch):
    publish(scored, server, monkeypatch)
    before = dict(server.request_counts)
    bots = sum(u["isBot"] for u in server.users())
    assert bots >= 1
    # The verdicts change (here: nobody is marked as a bot any more).
    meta, checks = publish(scored, server, monkeypatch, bot_flag_by=[])
    assert all(checks.values())
    assert server.request_counts["notes/create"] == before["notes/create"]
    assert server.request_counts["admin/accounts/create"] == before["admin/accounts/create"]
    assert server.request_counts["i/update"] - before["i/update"] == bots
    assert not any(u["isBot"] for u in server.users())
    # And the same scores again: nothing at all to do.
    again = dict(server.request_counts)
    publish(scored, server, monkeypatch, bot_flag_by=[])
    assert {e: server.request_counts[e] for e in ("notes/create", "i/update")} == \
        {e: again[e] for e in ("notes/create", "i/update")}


def test_killed_and_resumed_no_duplicates_nothing_lost(scored, tmp_path):
    (plan, _), _ = the_plan(ThreadPublishConfig().settings(SALT))
    saved = tmp_path / "plan"
    saved.mkdir()
    for name in ("accounts", "notes", "follows", "reactions", "quarantine"):
        getattr(plan, name).write_parquet(saved / f"{name}.parquet")
    rng = random.Random(22)
    total = plan.accounts.height * 4 + plan.notes.height  # creates, uploads, profiles, notes
    moments = {n: rng.choice(["kill_before", "kill_after"])
               for n in rng.sample(range(3, total), min(10, total - 3))}
    schedule = KillSchedule(lambda seq, endpoint: moments.get(seq))
    with MisskeyTestServer(flavor="misskey", rate_limit_scale=0,
                           latency={"admin/accounts/create": (0.01, 0.03)}) as srv:
        runs, result = publish_until_done(srv, schedule, saved, tmp_path / "work")
        assert schedule.kills == runs - 1 >= 5 and result["failed"] == 0
        assert_published_exactly(srv, plan, tmp_path / "work" / "ledger.duckdb", parts=PARTS)


def test_text_is_rewritten_to_pseudonyms_and_links_stripped():
    settings = ThreadSettings(salt="s")
    names = {("twitter", "alice_w"): pseudonym("s", "twitter", "1", "u_")}
    participants = {"alice_w": names[("twitter", "alice_w")]}
    words = re.compile(r"(?<![\w@])(alice_w)(?!\w)", re.IGNORECASE)
    text = rewrite("@Alice_W and @stranger: Alice_W said https://t.co/x ok (email a@b.c)",
                   "twitter", names, settings, words, participants)
    alice = names[("twitter", "alice_w")]
    stranger = pseudonym("s", "twitter", "@stranger", "u_")
    assert text == f"@{alice} and @{stranger}: {alice} said [link] ok (email a@b.c)"
    kept = rewrite("see https://t.co/x", "twitter", names,
                   ThreadSettings(salt="s", keep_links=True), None, {})
    assert kept == "see https://t.co/x"
    assert pseudonym("s", "twitter", "1", "u_") != pseudonym("t", "twitter", "1", "u_")
    with pytest.raises(ValueError, match="salt"):
        ThreadSettings()
    with pytest.raises(ValueError, match="unknown detectors"):
        ThreadSettings(salt="s", bot_flag_by=("vibes",))
