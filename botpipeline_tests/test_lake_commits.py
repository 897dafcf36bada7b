"""The lake under faults and concurrency: per-asset commits, one writer per partition,
schema contracts, and the same lake on a real S3 API (moto's server on loopback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from botpipeline.storage.catalog import publish_catalog
from botpipeline.storage.contracts import SchemaDrift
from botpipeline.storage.lake import ParquetLake, TableRef
from botpipeline.storage.locks import LockBusy
from botpipeline_tests.conftest import PROJECT_ROOT, SAMPLE

DAY = "2021-01-01"
RAW_TABLES = ("tweets", "deletions", "account_snapshots", "referenced_tweets", "quarantine",
              "stream_message_counts", "ingest_members")

# Materializes raw/tweets for DAY in this process; with a number N, SIGKILLs itself right
# after the transaction staged its N-th table (so some tables are written, none committed).
RUN_RAW_TWEETS = textwrap.dedent("""
    import os, signal, sys
    import dagster as dg
    from botpipeline.storage import lake as lake_module
    from botpipeline.defs.raw.twitterstream import raw_tweets
    from botpipeline.defs.resources import Warehouse

    kill_after = int(sys.argv[2])
    original, staged = lake_module.ParquetLake.write, []

    def write(self, *args, **kwargs):
        rows = original(self, *args, **kwargs)
        if self._tx is not None:
            staged.append(args[1])
            if len(staged) == kill_after:
                print("KILLED after", staged, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
        return rows

    lake_module.ParquetLake.write = write
    dg.materialize([raw_tweets], partition_key=sys.argv[3],
                   resources={"warehouse": Warehouse(data_dir=sys.argv[1])})
    print("DONE", staged, flush=True)
""")


def _raw_tweets(data_dir: Path, kill_after: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run([sys.executable, "-c", RUN_RAW_TWEETS, str(data_dir),
                           str(kill_after), DAY], capture_output=True, text=True, env=env,
                          timeout=300)


def _analysts_counts(database: Path) -> dict[str, int]:
    """What an analyst sees: rows per raw table for DAY, through the database's views."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM raw.{t} WHERE collection_date = "
                               f"DATE '{DAY}'").fetchall()[0][0] for t in RAW_TABLES}
    finally:
        con.close()


def test_a_run_killed_between_tables_leaves_the_old_partition_whole(real_minute_day,
                                                                     data_dir):
    lake = ParquetLake(data_dir / "lake")
    database = data_dir / "analysts.duckdb"
    first = _raw_tweets(data_dir)
    assert "DONE" in first.stdout, first.stderr[-3000:]
    publish_catalog(lake, database)
    old = _analysts_counts(database)
    assert old["tweets"] == 3_173 and old["deletions"] == 307

    # The day gains a second file; the re-run is killed after 3 of its 7 tables were staged.
    shutil.copy(SAMPLE / "incoming" / "twitterstream" / "2021-01-02" /
                "twitter-stream-2021-01-02.tar", real_minute_day)
    killed = _raw_tweets(data_dir, kill_after=3)
    assert killed.returncode == -9 and "KILLED" in killed.stdout, killed.stderr[-3000:]
    assert _analysts_counts(database) == old  # every table old, none half new
    leftovers = [p for p in (data_dir / "lake" / "raw").rglob(f"collection_date={DAY}/*.parquet")]
    assert len(leftovers) > len(RAW_TABLES)  # the killed run's files are there, uncommitted

    again = _raw_tweets(data_dir)  # the killed run's lock died with it: no wait, no hand step
    assert "DONE" in again.stdout, again.stderr[-3000:]
    new = _analysts_counts(database)
    assert new["tweets"] > old["tweets"] and all(new[t] >= old[t] for t in RAW_TABLES)
    assert new["tweets"] == lake.partition_rows("raw", "tweets", DAY)
    # the killed run's files are collected; each partition keeps its current and previous file
    for table in RAW_TABLES:
        files = list((data_dir / "lake" / "raw" / table / f"collection_date={DAY}").iterdir())
        assert len(files) <= 2, (table, files)


# Two writers of the same partition: each writes a table, sleeps, writes a second one.
WRITER = textwrap.dedent("""
    import sys, time
    import polars as pl
    from botpipeline.storage.lake import ParquetLake
    from botpipeline.storage.locks import LockBusy

    root, name, wait, pause = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    lake = ParquetLake(root)
    try:
        with lake.transaction("demo/pair", "2021-01-01", holder=name, wait=wait) as tx:
            print("LOCKED", name, time.time(), flush=True)
            tx.write("demo", "left", "2021-01-01", pl.DataFrame({"writer": [name] * 3}))
            time.sleep(pause)
            tx.write("demo", "right", "2021-01-01", pl.DataFrame({"writer": [name] * 5}))
        print("COMMITTED", name, time.time(), flush=True)
    except LockBusy as exc:
        print("REFUSED", exc, flush=True)
""")


def _writer(root: Path, name: str, wait: float, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, str(wait),
                             str(pause)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _snapshot(lake: ParquetLake) -> tuple | None:
    """The writers an analyst's one query sees in both tables, or None when a commit landed
    while it ran (then the two tables were read from two manifests, as any read-committed
    reader may)."""
    manifest = Path(lake.url) / "_lake" / "manifest.parquet"

    def version() -> int:
        return manifest.stat().st_mtime_ns if manifest.exists() else 0

    before = version()
    with lake.connect() as con:
        try:
            snap = con.execute("SELECT (SELECT list(DISTINCT writer ORDER BY writer) FROM "
                               "demo.left), (SELECT list(DISTINCT writer ORDER BY writer) FROM "
                               "demo.right)").fetchall()[0]
            snap = tuple(tuple(x or ()) for x in snap)
        except duckdb.CatalogException:
            snap = ()
    return snap if version() == before else None


def test_two_processes_writing_one_partition_never_interleave(tmp_path):
    lake = ParquetLake(tmp_path / "lake")
    seen: set[tuple] = set()
    stop = threading.Event()

    def watch() -> None:  # an analyst polling both tables all along
        while not stop.is_set():
            if (snap := _snapshot(lake)) is not None:
                seen.add(snap)

    watcher = threading.Thread(target=watch)
    watcher.start()
    a = _writer(tmp_path / "lake", "A", 60, 3.0)
    a_locked = a.stdout.readline()  # A holds the lock, then writes a table and pauses
    assert a_locked.startswith("LOCKED A"), a.communicate()
    b = _writer(tmp_path / "lake", "B", 60, 0.0)  # waits for A
    c = _writer(tmp_path / "lake", "C", 0.3, 0.0)  # gives up at once
    outs = {name: p.communicate(timeout=120)[0] for name, p in zip("ABC", (a, b, c))}
    outs["A"] = a_locked + outs["A"]
    stop.set()
    watcher.join()
    assert "COMMITTED A" in outs["A"] and "COMMITTED B" in outs["B"], outs
    assert outs["C"].startswith("REFUSED") and "demo/pair partition 2021-01-01" in outs["C"]
    assert "run A" in outs["C"] or "run B" in outs["C"]  # names who holds it
    a_committed = float(outs["A"].split("COMMITTED A ")[1].split()[0])
    b_locked = float(outs["B"].split("LOCKED B ")[1].split()[0])
    assert b_locked >= a_committed  # B started writing only after A committed
    # every moment the analyst saw: nothing, all of A, or all of B; never a mix
    assert () in seen  # A's first table, staged for seconds, was never visible
    assert seen <= {(), (("A",), ("A",)), (("B",), ("B",))}, seen
    assert _snapshot(lake) == (("B",), ("B",))
    with lake.connect() as con:
        assert con.execute("SELECT count(*) FROM demo.right").fetchall()[0][0] == 5


def test_schema_drift_fails_the_write_naming_the_column(tmp_path):
    lake = ParquetLake(tmp_path / "lake")
    lake.write("raw", "events", "2021-01-01",
               pl.DataFrame({"event_id": [1, 2], "likes": [3, 4], "note": [None, None]}))
    # an all-NULL column is not drift: it takes the contract's type once one is known
    lake.write("raw", "events", "2021-01-02",
               pl.DataFrame({"event_id": [3], "likes": [None], "note": ["text"]}))
    with pytest.raises(SchemaDrift, match=r"raw.events \(partition 2021-01-03\).*column "
                                          r"'likes' is VARCHAR, the contract says BIGINT"):
        lake.write("raw", "events", "2021-01-03",
                   pl.DataFrame({"event_id": [5], "likes": ["many"], "note": ["x"]}))
    with pytest.raises(SchemaDrift, match=r"column 'note' \(VARCHAR\) is missing"):
        lake.write("raw", "events", "2021-01-03", pl.DataFrame({"event_id": [5], "likes": [1]}))
    with pytest.raises(SchemaDrift, match=r"new column\(s\) 'shares' \(BIGINT\).*botpipeline "
                                          r"lake evolve raw.events"):
        lake.write("raw", "events", "2021-01-03",
                   pl.DataFrame({"event_id": [5], "likes": [1], "note": ["x"], "shares": [2]}))
    assert not lake.has_partition("raw", "events", "2021-01-03")  # nothing committed
    assert len(list((tmp_path / "lake" / "raw" / "events").rglob("*.parquet"))) == 2
    with lake.connect() as con:
        assert dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw.events)")
                    .fetchall())["likes"] == "BIGINT"
    # an additive change made explicit goes through, and is then the contract
    lake.allow_new_columns("raw", "events")
    lake.write("raw", "events", "2021-01-03",
               pl.DataFrame({"event_id": [5], "likes": [1], "note": ["x"], "shares": [2]}))
    assert lake.contract("raw", "events").columns["shares"] == "BIGINT"
    assert not lake.contract("raw", "events").allow_new_columns
    with lake.connect() as con:
        assert con.execute("SELECT sum(likes), count(shares) FROM raw.events").fetchall() == \
            [(8, 1)]


def test_a_lake_written_before_the_manifest_is_adopted(tmp_path):
    legacy = tmp_path / "lake" / "raw" / "tweets" / f"collection_date={DAY}"
    legacy.mkdir(parents=True)
    pl.DataFrame({"tweet_id": [1, 2, 3]}).write_parquet(legacy / "data.parquet")
    lake = ParquetLake(tmp_path / "lake")
    assert lake.partition_rows("raw", "tweets", DAY) == 3
    with lake.connect() as con:
        assert con.execute("SELECT count(*) FROM raw.tweets").fetchall()[0][0] == 3


def test_the_lake_on_a_real_s3_api(tmp_path):
    from botpipeline_tests.s3_server import s3_server

    with s3_server() as s3:
        lake = ParquetLake(s3.url("lake"))
        lake.write("raw", "t", DAY, pl.DataFrame({"a": [1, 2]}))
        with lake.transaction("raw/t", "2021-01-02") as tx:
            tx.write("raw", "t", "2021-01-02", pl.DataFrame({"a": [3]}))
            tx.write("raw", "u", "2021-01-02", pl.DataFrame({"b": ["x"]}))
            with tx.connect() as con:  # the transaction reads its own writes
                assert con.execute("SELECT count(*) FROM raw.u").fetchall() == [(1,)]
            assert [t.qualified for t in lake.tables()] == ["raw.t"]  # others see nothing yet
        lake.write("raw", "t", DAY, pl.DataFrame({"a": [10]}))  # replaces the partition
        with lake.connect() as con:
            assert con.execute("SELECT sum(a), count(*) FROM raw.t").fetchall() == [(13, 2)]
            assert con.execute("SELECT * FROM raw.u").fetchall() == [("x", pl.Series(
                ["2021-01-02"]).str.to_date()[0])]
        with pytest.raises(SchemaDrift, match="column 'a' is VARCHAR"):
            lake.write("raw", "t", "2021-01-03", pl.DataFrame({"a": ["x"]}))

        # the writer lock is a lease: a second writer is refused while it is held, and takes
        # over a lease whose holder died without releasing it once it lapsed
        from botpipeline.storage import locks

        with lake.transaction("raw/t", "2021-01-05", holder="first"):
            with pytest.raises(LockBusy, match="run first"):
                with lake.transaction("raw/t", "2021-01-05", wait=0.5):
                    pass
        lease = locks._S3Lease(lake.fs, lake._fs_path("_lake/locks/dead/k.lock"), "x",
                               "dead-run", ttl=0.5)
        assert lease.try_take() is None  # taken, never released (its process "died")
        with pytest.raises(LockBusy):
            with locks.lease_lock(lake.fs, lake._fs_path("_lake/locks/dead/k.lock"), "x",
                                  wait=0.1):
                pass
        time.sleep(0.6)
        with locks.lease_lock(lake.fs, lake._fs_path("_lake/locks/dead/k.lock"), "x", wait=1):
            pass


def test_a_transaction_reads_its_own_writes_over_the_committed_ones(tmp_path):
    lake = ParquetLake(tmp_path / "lake")
    lake.write("raw", "e", "2021-01-01", pl.DataFrame({"a": [1]}))
    lake.write("raw", "e", "2021-01-02", pl.DataFrame({"a": [2]}))
    with lake.transaction("raw/e", "2021-01-02") as tx:
        tx.write("raw", "e", "2021-01-02", pl.DataFrame({"a": [20, 21]}))
        tx.write("raw", "q", "2021-01-02", pl.DataFrame({"b": ["x"]}))
        with tx.connect() as con:
            assert con.execute("SELECT sum(a), count(*) FROM raw.e").fetchall() == [(42, 3)]
            assert con.execute("SELECT count(*) FROM raw.q").fetchall() == [(1,)]
        with lake.connect() as con:  # others still see the committed state only
            assert con.execute("SELECT sum(a), count(*) FROM raw.e").fetchall() == [(3, 2)]
        assert lake.tables() == [TableRef("raw", "e")]
    with lake.connect() as con:
        assert con.execute("SELECT sum(a), count(*) FROM raw.e").fetchall() == [(42, 3)]
        assert con.execute("SELECT count(*) FROM raw.q").fetchall() == [(1,)]
