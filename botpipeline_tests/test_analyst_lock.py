"""An analyst holding the DuckDB database open never makes a run fail.

A second process (an "analyst") opens the analysts' database, read-write (the DuckDB CLI's
default) or read-only, and keeps the session open while ``raw/tweets`` is materialized. DuckDB
admits one writer process, so the run cannot refresh the views: it must say so, succeed
quickly, and the analyst's open session must still see the new partition through the existing
views (they are globs over the lake's Parquet files). Once the analyst leaves, the next run
publishes the views again.
"""

from __future__ import annotations

import ast
import logging
import queue
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from botpipeline.defs.raw.twitterstream import raw_tweets
from botpipeline.defs.resources import Warehouse
from botpipeline.storage.catalog import publish_catalog

DAY = "2021-01-01"
MINUTE = Path("twitterstream_2021_01_01_00_29") / "29.json.bz2"
TWEETS = 3_173
DELETIONS = 307
RUN_LIMIT_S = 30  # a run that waited for the analyst's lock would blow far past this
HOLDER_TIMEOUT_S = 20
BUSY = "database busy"

# The analyst: opens the database, answers queries from stdin through that one open session,
# exits on QUIT (or when stdin closes, or after a safety timeout).
HOLDER = textwrap.dedent("""
    import sys, threading, os, duckdb
    path, mode, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    threading.Timer(limit, lambda: os._exit(3)).start()
    con = duckdb.connect(path, read_only=(mode == "read_only"))
    con.execute("SELECT count(*) FROM raw.tweets").fetchall()
    print("READY", flush=True)
    for line in sys.stdin:
        sql = line.strip()
        if not sql or sql == "QUIT":
            break
        try:
            print("ROW", repr(con.execute(sql).fetchall()), flush=True)
        except Exception as exc:
            print("ERR", type(exc).__name__, str(exc).splitlines()[0], flush=True)
    con.close()
    print("BYE", flush=True)
    os._exit(0)
""")


class Analyst:
    """A separate process holding a DuckDB session open on the analysts' database."""

    def __init__(self, database: Path, mode: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(database), mode, str(HOLDER_TIMEOUT_S * 3)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.expect("READY")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str) -> str:
        seen = []
        deadline = time.monotonic() + HOLDER_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"analyst process exited ({self.proc.wait()}) waiting for "
                            f"{prefix!r}: {seen}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            seen.append(line)
            if line.startswith("ERR"):
                pytest.fail(f"analyst query failed: {line}")
        pytest.fail(f"analyst process gave no {prefix!r} within {HOLDER_TIMEOUT_S}s: {seen}")

    def query(self, sql: str):
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        return ast.literal_eval(self.expect("ROW"))  # repr of fetchall(): tuples of numbers

    def query_error(self, sql: str) -> str:
        self.proc.stdin.write(sql + "\n")
        self.proc.stdin.flush()
        return self.expect("ERR")

    def quit(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("QUIT\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass
        try:
            assert self.proc.wait(timeout=HOLDER_TIMEOUT_S) == 0
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=HOLDER_TIMEOUT_S)


def _materialize(instance: dg.DagsterInstance) -> tuple[dg.ExecuteInProcessResult, float,
                                                         list[tuple[str, str]]]:
    """One run of raw/tweets for DAY; returns the result, its seconds and its log messages."""
    started = time.monotonic()
    result = dg.materialize([raw_tweets], partition_key=DAY, instance=instance,
                            resources={"warehouse": Warehouse()}, raise_on_error=False)
    seconds = time.monotonic() - started
    logs = [(logging.getLevelName(entry.level), entry.user_message) for entry in instance.all_logs(result.run_id) if not entry.is_dagster_event]
    return result, seconds, logs


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(e.event_specific_data) for e in result.all_events
                     if e.event_type_value in ("STEP_FAILURE", "RUN_FAILURE"))


def _row_count(result: dg.ExecuteInProcessResult) -> int:
    [mat] = result.asset_materializations_for_node("raw__tweets")
    return mat.metadata["dagster/row_count"].value


@pytest.fixture
def instance(data_dir):
    inst = dg.DagsterInstance.ephemeral()
    yield inst
    inst.dispose()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["read_write", "read_only"])
def test_run_succeeds_while_analyst_holds_database(mode, data_dir, real_data, instance,
                                                   monkeypatch):
    database = Path(data_dir.parent / "analysts" / "botpipeline.duckdb")
    monkeypatch.setenv("BOTPIPELINE_DUCKDB", str(database))
    day = data_dir / "incoming" / "twitterstream" / DAY
    day.mkdir(parents=True)

    # 1. The date's folder is still empty: the run writes empty partitions and creates the
    #    analysts' database with its views.
    result, _, logs = _materialize(instance)
    assert result.success, _failure(result)
    assert _row_count(result) == 0
    assert database.exists()
    assert not [m for level, m in logs if BUSY in m], logs

    analyst = Analyst(database, mode)
    try:
        assert analyst.query("SELECT count(*) FROM raw.tweets") == [(0,)]

        # While the analyst's session is open, the database cannot be written...
        busy = publish_catalog(Warehouse().lake, database)
        assert not busy.published
        assert BUSY in busy.reason

        # ...yet a run (the files have arrived meanwhile) succeeds, and quickly.
        shutil.copy(real_data / MINUTE, day / MINUTE.name)
        # A brand-new lake table cannot reach the analyst until the next refresh.
        Warehouse().lake.write("raw", "late_table", None, pl.DataFrame({"x": [1, 2]}))
        result, seconds, logs = _materialize(instance)
        assert result.success, _failure(result)
        assert seconds < RUN_LIMIT_S, f"run took {seconds:.1f}s with the database held"
        assert _row_count(result) == TWEETS
        warnings = [m for level, m in logs if level == "WARNING" and BUSY in m]
        assert warnings, f"no warning about the busy database in {logs}"
        assert str(database) in warnings[0]

        # The analyst's open session sees the replaced partition through the existing views.
        assert analyst.query("SELECT count(*) FROM raw.tweets") == [(TWEETS,)]
        assert analyst.query(
            f"SELECT count(*) FROM raw.tweets WHERE collection_date = DATE '{DAY}'"
        ) == [(TWEETS,)]
        assert analyst.query("SELECT count(*) FROM raw.deletions") == [(DELETIONS,)]
        assert analyst.query(
            "SELECT tweet_lines, delete_notices, unique_tweets "
            "FROM marts.stream_daily_summary") == [(TWEETS, DELETIONS, TWEETS)]
        assert "late_table" in analyst.query_error("SELECT count(*) FROM raw.late_table")
    finally:
        analyst.quit()

    # 2. The analyst has left: the next run publishes the views again, new table included.
    result, seconds, logs = _materialize(instance)
    assert result.success, _failure(result)
    assert not [m for level, m in logs if BUSY in m], logs
    assert [m for level, m in logs if m.startswith("analysts' database")], logs
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.tweets").fetchall() == [(TWEETS,)]
        assert con.execute("SELECT sum(x) FROM raw.late_table").fetchall() == [(3,)]
