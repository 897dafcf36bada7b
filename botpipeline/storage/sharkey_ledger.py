"""The publish ledger: which dataset object became which server object, in DuckDB.

One DuckDB file per (server, OASIS run), schema ``sharkey``, written as each call succeeds:
``record`` returns only once its row is committed, so a publish that dies at any point resumes
from it. Concurrent callers share commits (group commit: whoever finds no write in progress
writes every row queued so far in one transaction), because a DuckDB commit costs about as
much CPU as the HTTP call it records. Tokens are never written here (see
clients/sharkey/tokens.py).

``sharkey.ledger``   kind, key, user_id, server_id, detail (JSON), recorded_at — one row per
                     created object; kinds: account, avatar, banner, profile, note, follow,
                     reaction. Typed views: sharkey.accounts, .notes, .follows, .reactions.
``sharkey.failures`` the last error of each object not (yet) created.
``sharkey.sessions`` one row per publish started against this ledger.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
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


@dataclass
class _Pending:
    row: list
    committed: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


LEDGER_COLUMNS = {"kind": pl.String, "key": pl.String, "user_id": pl.String,
                  "server_id": pl.String, "detail": pl.String}


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
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._writing = False
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
        """Store one created object; returns once it is committed."""
        item = _Pending([kind, key, user_id, server_id,
                         json.dumps(detail, ensure_ascii=False) if detail else None])
        with self._queue_lock:
            self._queue.append(item)
            leader = not self._writing
            self._writing = True if leader else self._writing
        if leader:
            while True:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                    if not batch:
                        self._writing = False
                        break
                self._commit(batch)
        item.committed.wait()
        if item.error is not None:
            raise item.error

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self._lock:
                self._con.execute("BEGIN")
                if len(batch) <= 2:  # a frame insert only pays off from 3 rows on
                    for item in batch:
                        self._con.execute("INSERT OR IGNORE INTO sharkey.ledger (kind, key, "
                                          "user_id, server_id, detail) VALUES (?, ?, ?, ?, ?)",
                                          item.row)
                else:
                    rows = pl.DataFrame([i.row for i in batch], schema=LEDGER_COLUMNS,
                                        orient="row")
                    self._con.register("_rows", rows)
                    self._con.execute("INSERT OR IGNORE INTO sharkey.ledger (kind, key, "
                                      "user_id, server_id, detail) SELECT * FROM _rows")
                    self._con.unregister("_rows")
                cleared = [(i.row[0], i.row[1]) for i in batch
                           if (i.row[0], i.row[1]) in self._failing]
                for kind, key in cleared:
                    self._con.execute("DELETE FROM sharkey.failures WHERE kind = ? AND key = ?",
                                      [kind, key])
                self._con.execute("COMMIT")
                self._failing.difference_update(cleared)
        except BaseException as exc:  # every waiter must wake up, with the error
            try:
                with self._lock:
                    self._con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            for item in batch:
                item.error = exc
        finally:
            for item in batch:
                item.committed.set()

    def fail(self, kind: str, key: str, user_id: str | None, code: str, message: str) -> None:
        with self._lock:
            self._con.execute("INSERT OR REPLACE INTO sharkey.failures "
                              "(kind, key, user_id, code, message) VALUES (?, ?, ?, ?, ?)",
                              [kind, key, user_id, code, message])
            self._failing.add((kind, key))

    def frame(self, sql: str) -> pl.DataFrame:
        with self._lock:
            return self._con.sql(sql).pl()
