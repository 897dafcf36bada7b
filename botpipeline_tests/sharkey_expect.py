"""Shared by the publish tests: publishing, killing the publisher, and asserting that the
server holds exactly what the plan says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl

from botpipeline.transforms.sharkey.plan import Plan


def ledger_ids(path: Path) -> dict[tuple[str, str], str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {(k, key): sid for k, key, sid in
                con.execute("SELECT kind, key, server_id FROM sharkey.ledger").fetchall()}


def assert_published_exactly(server, plan: Plan, ledger_path: Path,
                             parts=("accounts", "profiles", "notes", "renotes", "follows",
                                    "reactions")) -> None:
    """Every planned object exists once on the server, as planned, and nothing else."""
    ids = ledger_ids(ledger_path)
    users = {u["id"]: u for u in server.users()}
    by_name = {u["username"]: u for u in users.values()}
    account = {}
    for user_id, username, display_name in plan.accounts.select(
            "user_id", "username", "display_name").rows():
        server_user = by_name[username]
        assert ids[("account", user_id)] == server_user["id"]
        account[user_id] = server_user["id"]
        if "profiles" in parts:
            assert server_user["name"] == display_name
            assert server_user["avatarId"] and server_user["bannerId"]
    assert len(users) == plan.accounts.height + 1  # + the admin
    notes = server.notes()
    counts = Counter(n["id"] for n in notes)
    assert all(c == 1 for c in counts.values())
    planned = plan.notes if "renotes" in parts else plan.notes.filter(
        pl.col("source") == "dataset")
    assert len(notes) == planned.height, f"{len(notes)} notes on the server, " \
                                         f"{planned.height} planned"
    on_server = {n["id"]: n for n in notes}
    mapped = set()
    for key, user, text, reply_to, renote_of in planned.select(
            "note_key", "user_id", "text", "reply_to_key", "renote_of_key").rows():
        note = on_server[ids[("note", key)]]
        mapped.add(note["id"])
        assert note["userId"] == account[user]
        assert (note.get("text") or "") == (text or "").strip()
        assert note.get("replyId") == (ids[("note", reply_to)] if reply_to else None)
        assert note.get("renoteId") == (ids[("note", renote_of)] if renote_of else None)
        if reply_to:  # ids are time-ordered: the parent existed first
            assert note["replyId"] < note["id"]
    assert mapped == set(on_server)
    if "follows" in parts:
        expected = {(account[a], account[b]) for a, b in plan.follows.rows()}
        assert server.follows() == expected
    if "reactions" in parts:
        expected = {(account[u], ids[("note", k)]): r for u, k, r in plan.reactions.select(
            "user_id", "note_key", "reaction").rows()}
        assert server.reactions() == expected
    if "profiles" in parts:
        assert len(server.files()) == 2 * plan.accounts.height


def publish(server, plan: Plan, work: Path, parts=None, workers: int = 16, run_id: str = "run",
            create_workers: int = 8, **client_kw):
    """Publish ``plan`` to ``server`` with the ledger and token store under ``work``."""
    from botpipeline.clients.sharkey.client import SharkeyClient
    from botpipeline.clients.sharkey.publisher import PARTS, Publisher
    from botpipeline.clients.sharkey.tokens import TokenStore
    from botpipeline.storage.sharkey_ledger import Ledger

    client = SharkeyClient(server.url, server.admin_token, backoff=0.01, **client_kw)
    ledger = Ledger(work / "ledger.duckdb", client.server, run_id)
    try:
        return Publisher(plan, client, ledger, TokenStore(work / "tokens", client.server),
                         create_workers=create_workers
                         ).publish(set(parts or PARTS), workers=workers)
    finally:
        ledger.close()
        client.close()


def forget(ledger_path: Path, kind: str, key: str) -> None:
    """What a crash between the server's answer and the ledger commit leaves: no row."""
    with duckdb.connect(str(ledger_path)) as con:
        con.execute("DELETE FROM sharkey.ledger WHERE kind = ? AND key = ?", [kind, key])


def forget_token(store_dir: Path, username: str) -> None:
    """What a crash before the token reached the store leaves: the password only."""
    path = next(store_dir.glob("*.json"))
    data = json.loads(path.read_text())
    data[username.lower()].pop("token")
    path.write_text(json.dumps(data))


class KillSchedule:
    """SIGKILL the publishing worker at chosen requests (the test server's ``on_request`` and
    ``kill_hook``). ``choose(seq, endpoint)`` names a moment (``kill_before`` / ``kill_after``)
    or None. A process is doomed when its moment is chosen, not when the kill lands
    (``kill_after`` waits for the server's work), so two moments never hit one process: a moment
    that arrives from a doomed process's stragglers goes to the next process."""

    def __init__(self, choose):
        self.choose, self.lock = choose, threading.Lock()
        self.proc = self.doomed = None
        self.kills = self.deferred = 0

    def on_request(self, seq: int, endpoint: str) -> str | None:
        with self.lock:
            action = self.choose(seq, endpoint)
            if self.doomed is self.proc:
                self.deferred += action is not None
                return None
            if action is None and self.deferred:
                self.deferred -= 1
                action = "kill_after"
            if action is not None:
                self.doomed, self.kills = self.proc, self.kills + 1
            return action

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)


def publish_until_done(server, schedule: KillSchedule, run_dir: Path, work: Path,
                       max_runs: int = 80) -> tuple[int, dict]:
    """Run botpipeline_tests.sharkey_publish_worker until it finishes; every run that does not
    finish must have been killed (one that stops by itself would need a hand step). Returns the
    number of runs and the last run's report."""
    root = Path(__file__).resolve().parent.parent
    server.on_request, server.kill_hook = schedule.on_request, schedule.kill
    env = {**os.environ, "PYTHONPATH": str(root), "SHARKEY_ADMIN_TOKEN": server.admin_token}
    for runs in range(1, max_runs + 1):
        proc = subprocess.Popen(
            [sys.executable, "-m", "botpipeline_tests.sharkey_publish_worker", server.url,
             str(run_dir), str(work)], env=env, cwd=root, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        with schedule.lock:
            schedule.proc = proc
        out, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            return runs, json.loads(out.strip().splitlines()[-1])
        assert proc.returncode == -signal.SIGKILL, err[-3000:]
    raise AssertionError(f"the publish never finished in {max_runs} runs")
