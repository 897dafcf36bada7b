"""Compare what the server holds with the ledger (the publish's asset checks).

Counts: each account's ``notesCount`` / ``followingCount`` (from ``i`` with its own token, so
the calls are metered per account and run in parallel) against the ledger. Threading: a seeded
sample of notes read back with ``notes/show``: author, reply parent, renote target and text
must be the ones the dataset says.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.errors import SharkeyError
from botpipeline.clients.sharkey.tokens import TokenStore


def _map(fn, items, workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def server_counts(client: SharkeyClient, tokens: TokenStore, accounts: pl.DataFrame,
                  workers: int = 16) -> pl.DataFrame:
    """``user_id, username, notes_count, following_count, is_bot, description, error`` per
    published account, as the account itself sees them."""
    empty = {"notes_count": None, "following_count": None, "is_bot": None, "description": None}

    def one(row):
        token = tokens.token(row["username"])
        if not token:
            return {**row, **empty, "error": "no token"}
        try:
            me = client.call("i", {}, token=token)
        except SharkeyError as exc:
            return {**row, **empty, "error": str(exc)}
        return {**row, "notes_count": me.get("notesCount"),
                "following_count": me.get("followingCount"), "is_bot": me.get("isBot"),
                "description": me.get("description"), "error": None}

    rows = _map(one, accounts.select("user_id", "username").to_dicts(), workers)
    return pl.DataFrame(rows, schema={"user_id": pl.String, "username": pl.String,
                                      "notes_count": pl.Int64, "following_count": pl.Int64,
                                      "is_bot": pl.Boolean, "description": pl.String,
                                      "error": pl.String})


def check_threading(client: SharkeyClient, tokens: TokenStore, notes: pl.DataFrame,
                    sample: int, seed: int = 0, workers: int = 16) -> pl.DataFrame:
    """Read back a sample of published notes. ``notes`` needs ``note_key, username,
    server_note_id, server_user_id, server_reply_id, server_renote_id, text``; returns the
    sample with ``problem`` (null when the server agrees)."""
    published = notes.filter(pl.col("server_note_id").is_not_null()).sort("note_key")
    picks = random.Random(seed).sample(range(published.height), min(sample, published.height))
    rows = published[sorted(picks)].to_dicts() if picks else []

    def one(row):
        token = tokens.token(row["username"])
        try:
            note = client.call("notes/show", {"noteId": row["server_note_id"]}, token=token)
        except SharkeyError as exc:
            return {**row, "problem": f"notes/show failed: {exc.code}"}
        problems = []
        for field, expected in (("userId", row["server_user_id"]),
                                ("replyId", row["server_reply_id"]),
                                ("renoteId", row["server_renote_id"])):
            if note.get(field) != expected:
                problems.append(f"{field} {note.get(field)!r} != {expected!r}")
        if (note.get("text") or "").strip() != (row["text"] or "").strip():
            problems.append("text differs")
        return {**row, "problem": "; ".join(problems) or None}

    checked = _map(one, rows, workers)
    return pl.DataFrame(checked, schema={**published.schema, "problem": pl.String}) \
        if checked else published.clear().with_columns(pl.lit(None, pl.String).alias("problem"))
