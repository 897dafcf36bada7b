"""Publishing the real OASIS run to the Misskey-compatible test server: all of it, exactly
once, through faults, crashes and kills; verified by the asset checks; no token leaked."""

from __future__ import annotations

import json
import random
import re
import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.publisher import PARTS, Publisher
from botpipeline.clients.sharkey.tokens import TokenStore
from botpipeline.definitions import defs
from botpipeline.defs.raw.oasis import raw_oasis_posts
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.oasis import read_run
from botpipeline.storage.sharkey_ledger import Ledger
from botpipeline.transforms.sharkey.plan import plan_publication
from botpipeline_tests.conftest import PROJECT_ROOT
from botpipeline_tests.misskey_server import FaultConfig, MisskeyTestServer
from botpipeline_tests.sharkey_expect import (KillSchedule, assert_published_exactly, forget,
                                            forget_token, publish, publish_until_done)

RUN_ID = "prod_100p_100s_65_35"


@pytest.fixture(scope="module")
def oasis_dir():
    from botpipeline_tests.conftest import REAL_DATA
    path = REAL_DATA / f"oasis_{RUN_ID}"
    if not path.is_dir():
        pytest.skip(f"real OASIS run not found at {path}")
    return path


@pytest.fixture(scope="module")
def plan(oasis_dir):
    run = read_run(oasis_dir)
    return plan_publication(run.posts, run.personas, run.follows)


@pytest.fixture
def server():
    with MisskeyTestServer(rate_limit_scale=0) as srv:
        yield srv


# -- the Dagster assets and checks ----------------------------------------------------------

def test_real_run_published_through_the_assets_with_checks_passing(
        data_dir, oasis_dir, server, tmp_path, monkeypatch):
    shutil.copytree(oasis_dir, data_dir / "incoming" / "oasis" / RUN_ID)
    store = tmp_path / "token-store"
    monkeypatch.setenv("SHARKEY_URL", server.url)
    monkeypatch.setenv("SHARKEY_ADMIN_TOKEN", server.admin_token)
    monkeypatch.setenv("SHARKEY_TOKEN_STORE", str(store))
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("oasis_runs", [RUN_ID])
    assert dg.materialize([raw_oasis_posts], partition_key=RUN_ID, instance=instance,
                          resources={"warehouse": Warehouse()}).success
    job = defs.resolve_job_def("sharkey_publish")

    dry = job.execute_in_process(partition_key=RUN_ID, instance=instance, run_config={
        "ops": {"sharkey_publication": {"config": {"dry_run": True}}}})
    assert dry.success and sum(server.request_counts.values()) == 0  # planned, called nothing

    result = job.execute_in_process(partition_key=RUN_ID, instance=instance)
    assert result.success
    published = {e.asset_key.path[-1]: {k: v.value for k, v in
                                        e.materialization.metadata.items()}
                 for e in result.get_asset_materialization_events()}
    assert set(published) == {"plan", *PARTS}
    assert published["accounts"]["dagster/row_count"] == 100
    assert published["notes"]["dagster/row_count"] == 1363
    assert published["follows"]["dagster/row_count"] == 287
    assert published["renotes"]["dagster/row_count"] == 60
    assert published["reactions"]["dagster/row_count"] == 500
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"notes_count_matches_ledger": True,
                      "following_count_matches_ledger": True,
                      "threading_matches_dataset": True}
    ledger = next((data_dir / "sharkey").rglob("ledger.duckdb"))
    assert_published_exactly(server, _plan_of(oasis_dir), ledger)

    # The analysts' tables: one row per planned object with its server id.
    import duckdb
    with duckdb.connect(str(data_dir / "botpipeline.duckdb"), read_only=True) as con:
        replies = con.execute("""
            SELECT count(*) FROM sharkey.notes n JOIN sharkey.notes p
              ON p.run_id = n.run_id AND p.note_key = n.reply_to_key
            WHERE n.run_id = ? AND n.server_reply_id = p.server_note_id""", [RUN_ID]).fetchone()
        assert replies[0] == 882
        assert con.execute("SELECT count(*) FROM sharkey.accounts WHERE server_user_id IS NULL"
                           ).fetchone()[0] == 0

        # The README's example queries for the sharkey tables run and return rows.
        readme = (PROJECT_ROOT / "README.md").read_text()
        blocks = re.findall(r"```sql sharkey\n(.*?)```", readme, flags=re.S)
        statements = [q.strip() for b in blocks for q in b.split(";") if q.strip()]
        assert len(statements) >= 2
        for statement in statements:
            assert con.execute(statement).fetchall(), statement

    # A second run finds everything in the ledger and creates nothing.
    before = dict(server.request_counts)
    again = job.execute_in_process(partition_key=RUN_ID, instance=instance)
    assert again.success
    creates = ("admin/accounts/create", "notes/create", "following/create",
               "notes/reactions/create", "drive/files/create", "i/update")
    assert all(server.request_counts[e] == before.get(e, 0) for e in creates)

    # No token anywhere: event logs, lake, ledger, analysts' database, Dagster home.
    secrets = [server.admin_token] + [v["token"] for v in json.loads(
        next(store.glob("*.json")).read_text()).values()]
    assert len(secrets) == 101
    logs = "\n".join(str(e) for r in (dry, result, again) for e in instance.all_logs(r.run_id))
    assert not any(s in logs for s in secrets)
    for path in tmp_path.rglob("*"):
        if path.is_file() and store not in path.parents:
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
    assert oct(next(store.glob("*.json")).stat().st_mode & 0o777) == "0o600"


def _plan_of(oasis_dir):
    run = read_run(oasis_dir)
    return plan_publication(run.posts, run.personas, run.follows)


def test_publish_fails_clearly_and_names_what_is_missing(data_dir, oasis_dir, tmp_path,
                                                         monkeypatch):
    shutil.copytree(oasis_dir, data_dir / "incoming" / "oasis" / RUN_ID)
    monkeypatch.setenv("SHARKEY_URL", "http://127.0.0.1:9")  # nothing listens on discard
    monkeypatch.setenv("SHARKEY_ADMIN_TOKEN", "secret-admin-token-xyz")
    monkeypatch.setenv("SHARKEY_TOKEN_STORE", str(tmp_path / "store"))
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("oasis_runs", [RUN_ID])
    assert dg.materialize([raw_oasis_posts], partition_key=RUN_ID, instance=instance,
                          resources={"warehouse": Warehouse()}).success
    result = defs.resolve_job_def("sharkey_publish").execute_in_process(
        partition_key=RUN_ID, instance=instance, raise_on_error=False,
        run_config={"resources": {"sharkey": {"config": {"max_retries": 1}}}})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "did not answer" in message and "continues where it stopped" in message
    logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
    assert "secret-admin-token-xyz" not in logs


# -- resilience -----------------------------------------------------------------------------

def test_faults_at_five_percent_of_calls_lose_nothing(oasis_dir, plan, tmp_path):
    faults = FaultConfig(rate=0.05, kinds=("error500", "error500_after", "drop", "drop_after",
                                           "cut_after", "slow"), seed=11,
                         slow_seconds=0.05)
    with MisskeyTestServer(rate_limit_scale=0, faults=faults) as srv:
        report = publish(srv, plan, tmp_path)
        assert not report.outcome.failed and not report.outcome.blocked
        assert sum(srv.fault_counts.values()) >= 100
        assert_published_exactly(srv, plan, tmp_path / "ledger.duckdb")


def test_calls_applied_but_never_answered_are_adopted_not_repeated(oasis_dir, plan, tmp_path):
    # The server does the work, then drops the connection: the client cannot know it worked.
    faults = FaultConfig(rate=0.1, kinds=("drop_after",), seed=5,
                         endpoints={"notes/create", "following/create", "i/update",
                                    "notes/reactions/create", "drive/files/create"})
    with MisskeyTestServer(rate_limit_scale=0, faults=faults) as srv:
        report = publish(srv, plan, tmp_path)
        assert not report.outcome.failed and not report.outcome.blocked
        assert srv.fault_counts["drop_after"] >= 100
        assert report.reconciled["note"] + report.reconciled["renote"] >= 50
        assert_published_exactly(srv, plan, tmp_path / "ledger.duckdb")


@pytest.mark.parametrize("flavor", ["sharkey", "misskey"])
def test_account_answers_lost_in_transit_are_recovered_by_signing_in(plan, tmp_path, flavor):
    """The server creates the account and the answer (its only copy of the token) is lost:
    the publisher signs in with the password it stored first; no operator step."""
    faults = FaultConfig(rate=0.1, kinds=("drop_after", "cut_after", "error500_after"), seed=3,
                         endpoints={"admin/accounts/create"})
    with MisskeyTestServer(flavor=flavor, rate_limit_scale=0, faults=faults,
                           latency={"admin/accounts/create": (0.0, 0.02)}) as srv:
        report = publish(srv, plan, tmp_path)
        assert not report.outcome.failed and not report.outcome.blocked
        lost = sum(srv.fault_counts.values())  # a retry's answer may be lost again
        assert 5 <= report.signins <= lost
        assert report.signins == srv.request_counts["signin-flow"] == report.reconciled["account"]
        assert_published_exactly(srv, plan, tmp_path / "ledger.duckdb")


def test_a_password_changed_on_the_server_is_the_only_hand_step_and_says_what_to_do(
        plan, tmp_path):
    with MisskeyTestServer(flavor="misskey", rate_limit_scale=0) as srv:
        publish(srv, plan, tmp_path, parts={"accounts"})
        # A crash right after the server created the account: neither its token nor its
        # ledger row were written (the password was, before the call).
        user_id, username = plan.accounts.select("user_id", "username").row(0)
        forget_token(tmp_path / "tokens", username)
        forget(tmp_path / "ledger.duckdb", "account", user_id)
        srv.change_password(username, "changed-by-an-admin")
        report = publish(srv, plan, tmp_path, parts={"accounts", "notes"})
        lost = [t for t in report.outcome.failed if t.code == "TOKEN_LOST"]
        assert [t.key for t in lost] == [user_id] and username.lower() in lost[0].error
        assert "password was changed" in lost[0].error and "Reset password" in lost[0].error
        assert {t.kind for t in report.outcome.failed} == {"account"}  # the others go on
        assert report.outcome.done["note"] > 1300 and report.outcome.blocked
        # What the message says: the new password into the store, then publish again.
        store = TokenStore(tmp_path / "tokens", SharkeyClient(srv.url).server)
        store.put(username, password="changed-by-an-admin")
        again = publish(srv, plan, tmp_path)
        assert not again.outcome.failed and not again.outcome.blocked and again.signins == 1
        assert_published_exactly(srv, plan, tmp_path / "ledger.duckdb")


def test_a_username_someone_else_owns_is_named_not_adopted(plan, tmp_path):
    with MisskeyTestServer(rate_limit_scale=0) as srv:
        taken = plan.accounts["username"][3]
        SharkeyClient(srv.url, srv.admin_token).call(
            "admin/accounts/create", {"username": taken, "password": "not-ours"})
        # Our password for it was chosen an hour after someone else created the account.
        store = TokenStore(tmp_path / "tokens", SharkeyClient(srv.url).server)
        store.password_for(taken, lambda: "ours")
        store.put(taken, password_set_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
        report = publish(srv, plan, tmp_path, parts={"accounts"})
        failed = report.failed("account")
        assert [t.code for t in failed] == ["USERNAME_TAKEN"]
        assert f"@{taken}" in failed[0].error and "someone else owns it" in failed[0].error
        assert report.outcome.done["account"] == 99


KILL_SEED = 20261206


@pytest.mark.parametrize("flavor", ["sharkey", "misskey"])
def test_killed_at_30_seeded_moments_under_faults_the_server_ends_identical(
        oasis_dir, plan, tmp_path, flavor):
    """SIGKILL the publishing process at 30 seeded moments (12 of them at account-creation
    calls, while other accounts are being created, each before or after the server acts) and
    restart it each time, with 5 % faults on every call (5xx before and after the work,
    connections dropped before and after, answers cut off mid-body, slow answers). Every run
    either finishes or is killed: none needs a hand step, and the server ends with exactly the
    planned content."""
    rng = random.Random(KILL_SEED)
    at_create = {n: rng.choice(["kill_before", "kill_after"])
                 for n in rng.sample(range(2, 95), 12)}
    at_call = {n: rng.choice(["kill_before", "kill_after"])
               for n in rng.sample(range(150, 2600), 18)}
    creates = {"seen": 0, "killed": 0}

    def choose(seq, endpoint):
        if endpoint == "admin/accounts/create":
            creates["seen"] += 1
            if creates["seen"] in at_create:
                creates["killed"] += 1
                return at_create[creates["seen"]]
        return at_call.get(seq)

    faults = FaultConfig(rate=0.05, kinds=("error500", "error500_after", "drop", "drop_after",
                                           "cut_after", "slow"), seed=KILL_SEED,
                         slow_seconds=0.02)
    schedule = KillSchedule(choose)
    with MisskeyTestServer(flavor=flavor, rate_limit_scale=0, faults=faults,
                           latency={"admin/accounts/create": (0.01, 0.05)}) as srv:
        runs, result = publish_until_done(srv, schedule, oasis_dir, tmp_path)
        srv.faults = None
        assert schedule.kills == runs - 1 == 30 and creates["killed"] == 12
        assert result["failed"] == 0 and result["blocked"] == 0
        assert_published_exactly(srv, plan, tmp_path / "ledger.duckdb")
        print(f"{flavor}: seed {KILL_SEED}, {runs} runs, {schedule.kills} killed "
              f"({creates['killed']} at account creation), faults "
              f"{dict(srv.fault_counts)}, sign-ins {srv.request_counts['signin-flow']}, "
              f"requests {sum(srv.request_counts.values())}")


def test_misskey_accepts_only_roots_token_for_accounts_and_says_so(plan, tmp_path):
    with MisskeyTestServer(flavor="misskey", rate_limit_scale=0) as srv:
        helper = SharkeyClient(srv.url, srv.admin_token).call(
            "admin/accounts/create", {"username": "moderator", "password": "pw"})
        srv.grant_admin("moderator")
        client = SharkeyClient(srv.url, helper["token"])
        ledger = Ledger(tmp_path / "ledger.duckdb", client.server, RUN_ID)
        report = Publisher(plan, client, ledger, TokenStore(tmp_path / "t", client.server)
                           ).publish({"accounts", "notes"})
        ledger.close()
        assert "root's token" in report.outcome.aborted
        assert len(srv.users()) == 2 and not srv.notes()
        assert report.summary()["note"]["blocked"] == 1363


def test_each_account_keeps_within_its_own_rate_limits(tmp_path):
    """Tight per-user limits: the publisher waits per account (429 + pacing) and finishes."""
    posts = pl.DataFrame({
        "post_id": [f"p{i}" for i in range(24)],
        "user_id": [str(i % 3) for i in range(24)],
        "parent_id": [None] * 6 + [f"p{i - 6}" for i in range(6, 24)],
        "step": [i // 6 for i in range(24)], "text": [f"post {i}" for i in range(24)],
        "source_line": list(range(1, 25))})
    personas = pl.DataFrame({"username": ["a_user", "b_user", "c_user"],
                             "primary_label": ["benign", "trad", "misinfo"],
                             "description": ["x", "y", "z"]}).with_row_index("user_id") \
        .with_columns(pl.col("user_id").cast(pl.String))
    follows = pl.DataFrame({"follower_id": ["0", "1"], "followee_id": ["1", "2"]})
    small = plan_publication(posts, personas, follows)
    limits = {"notes/create": (3, 600), "notes/reactions/create": (1, 200)}
    with MisskeyTestServer(limits=limits) as srv:
        report = publish(srv, small, tmp_path)
        assert not report.outcome.failed and not report.outcome.blocked
        assert report.outcome.waits > 0
        assert_published_exactly(srv, small, tmp_path / "ledger.duckdb")
