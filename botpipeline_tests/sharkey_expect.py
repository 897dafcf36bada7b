"""Assertions shared by the publish tests: the server holds exactly what the plan says."""

from __future__ import annotations

import json
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
