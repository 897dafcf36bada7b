"""The publish ledger: which dataset object became which server object, in DuckDB.

One DuckDB file per (server, OASIS run), schema ``sharkey``, written as each call succeeds
(one row, one commit), so a publish that dies at any point resumes from it. Tokens are never
written here (see clients/sharkey/tokens.py).

``sharkey.ledger``   kind, key, user_id, server_id, detail (JSON), recorded_at — one row per
                     created object; kinds: account, avatar, banner, profile, note, follow,
                     reaction. Typed views: sharkey.accounts, .notes, .follows, .reactions.
``sharkey.failures`` the last error of each object not (yet) created.
``sharkey.sessions`` one row per publish started against this ledger.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import duckdb
import polars as pl

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS sharkey;
CREATE TABLE IF NOT EXISTS sharkey.about (server VARCHAR, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS sharkey.ledger (
    kind VARCHAR, key VARCHAR, user_id VARCHAR, server_id VARCHAR, detail VARCHAR,
    recorded_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS sharkey.failures (
    kind VARCHAR, key VARCHAR, user_id VARCHAR, code VARCHAR, message VARCHAR,
    failed_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS sharkey.sessions (
    started_at TIMESTAMPTZ DEFAULT current_timestamp, kinds VARCHAR);
CREATE OR REPLACE VIEW sharkey.accounts AS SELECT key AS user_id, server_id AS server_user_id,
    detail->>'username' AS username, recorded_at FROM sharkey.ledger WHERE kind = 'account';
CREATE OR REPLACE VIEW sharkey.notes AS SELECT key AS note_key, user_id,
    server_id AS server_note_id, recorded_at FROM sharkey.ledger WHERE kind = 'note';
CREATE OR REPLACE VIEW sharkey.follows AS SELECT split_part(key, '->', 1) AS follower_id,
    split_part(key, '->', 2) AS followee_id, server_id AS server_followee_id, recorded_at
    FROM sharkey.ledger WHERE kind = 'follow';
CREATE OR REPLACE VIEW sharkey.reactions AS SELECT user_id, split_part(key, '|', 2) AS note_key,
    server_id AS server_note_id, detail->>'reaction' AS reaction, recorded_at
    FROM sharkey.ledger WHERE kind = 'reaction';
"""


class LedgerMismatch(RuntimeError):
    pass


class Ledger:
    def __init__(self, path: str | Path, server: str, run_id: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._lock = threading.Lock()
        self._con.execute(SCHEMA)
        about = self._con.execute("SELECT server, run_id FROM sharkey.about").fetchall()
        if not about:
            self._con.execute("INSERT INTO sharkey.about VALUES (?, ?)", [server, run_id])
        elif about[0] != (server, run_id):
            raise LedgerMismatch(f"{self.path} records {about[0][1]} on {about[0][0]}, "
                                 f"not {run_id} on {server}")
        self.previous_sessions = self._con.execute(
            "SELECT count(*) FROM sharkey.sessions").fetchone()[0]
        self._failing = set(self._con.execute("SELECT kind, key FROM sharkey.failures")
                            .fetchall())

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def start_session(self, kinds: list[str]) -> None:
        with self._lock:
            self._con.execute("INSERT INTO sharkey.sessions (kinds) VALUES (?)",
                              [",".join(sorted(kinds))])

    def done(self) -> dict[tuple[str, str], str]:
        with self._lock:
            rows = self._con.execute("SELECT kind, key, server_id FROM sharkey.ledger").fetchall()
        return {(kind, key): server_id for kind, key, server_id in rows}

    def record(self, kind: str, key: str, user_id: str | None, server_id: str | None,
               detail: dict | None = None) -> None:
        with self._lock:
            self._con.execute("INSERT OR IGNORE INTO sharkey.ledger "
                              "(kind, key, user_id, server_id, detail) VALUES (?, ?, ?, ?, ?)",
                              [kind, key, user_id, server_id,
                               json.dumps(detail, ensure_ascii=False) if detail else None])
            if (kind, key) in self._failing:
                self._con.execute("DELETE FROM sharkey.failures WHERE kind = ? AND key = ?",
                                  [kind, key])
                self._failing.discard((kind, key))

    def fail(self, kind: str, key: str, user_id: str | None, code: str, message: str) -> None:
        with self._lock:
            self._con.execute("INSERT OR REPLACE INTO sharkey.failures "
                              "(kind, key, user_id, code, message) VALUES (?, ?, ?, ?, ?)",
                              [kind, key, user_id, code, message])
            self._failing.add((kind, key))

    def last_note_id(self, user_id: str) -> str | None:
        with self._lock:
            return self._con.execute("SELECT max(server_id) FROM sharkey.ledger "
                                     "WHERE kind = 'note' AND user_id = ?",
                                     [user_id]).fetchone()[0]

    def frame(self, sql: str) -> pl.DataFrame:
        with self._lock:
            return self._con.execute(sql).pl()
