"""The same multi-date backfill of ``daily_pipeline`` on the distributed engine, side by side:
1 vs 2 Dask workers, and the lake on local disk vs the loopback S3 server, with the in-process
run (`botpipeline run`'s way) as the baseline.

    .venv/bin/python benchmarks/distributed_backfill.py [--days 4] [--tweets-per-day 2000]
        [--minutes-per-day 96] [--only inprocess,dask1-local,dask2-local,dask1-s3,dask2-s3]

Each contender gets a fresh copy of the generated days and its own lake; the Dask ones run
with the Dagster instance on a private PostgreSQL (deploy/cluster/dagster.yaml), steps on a
LocalCluster of N worker processes (one thread each) and the backfill driven as launched runs
(``botpipeline_tests/distributed.py``: ``execute_job`` per date). Prints wall time, the time the
steps themselves took, ratios, and peak memory per worker (RSS sampled every 100 ms) and of
the driver. Needs the ``cluster`` and ``test`` extras and PostgreSQL's binaries. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import in_child, tree_rss  # noqa: E402

CONTENDERS = ("inprocess", "dask1-local", "dask2-local", "dask1-s3", "dask2-s3")


def in_process_backfill(data: str, dates: list[str]) -> dict:
    """The baseline: each date's job in process, as `botpipeline run` runs it."""
    os.environ.update({"BOTPIPELINE_DATA_DIR": data,
                       "BOTPIPELINE_DUCKDB": f"{data}/botpipeline.duckdb"})
    os.environ.pop("BOTPIPELINE_LAKE_URL", None)
    import dagster as dg

    from botpipeline.definitions import defs

    job = defs.resolve_job_def("daily_pipeline")
    with dg.DagsterInstance.ephemeral() as instance:
        for key in dates:
            assert job.execute_in_process(partition_key=key, instance=instance).success
    return {}


class PeakSampler(threading.Thread):
    """Peak RSS of each watched process (with its children), sampled every 100 ms."""

    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.stop = threading.Event()

    def watch(self, name: str, pid: int) -> None:
        self.procs[name] = psutil.Process(pid)
        self.peak.setdefault(name, 0)

    def run(self) -> None:
        while not self.stop.is_set():
            for name, proc in list(self.procs.items()):
                self.peak[name] = max(self.peak[name], tree_rss(proc))
            time.sleep(0.1)


def dask_backfill(data: Path, dates: list[str], workers: int, lake_url: str | None,
                  instance_env: dict[str, str]) -> dict:
    """One backfill on a fresh LocalCluster of ``workers`` processes."""
    from dask.distributed import Client, LocalCluster

    env = {**instance_env, "BOTPIPELINE_DATA_DIR": str(data),
           "BOTPIPELINE_DUCKDB": str(data / "botpipeline.duckdb")}
    saved = {k: os.environ.get(k) for k in [*env, "BOTPIPELINE_LAKE_URL"]}
    os.environ.update(env)
    if lake_url:
        os.environ["BOTPIPELINE_LAKE_URL"] = lake_url
    else:
        os.environ.pop("BOTPIPELINE_LAKE_URL", None)
    try:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster) as client:
            worker_pids = client.run(os.getpid)
            # Warm the workers (import the code location) outside the timing, as a long-lived
            # cluster would be.
            client.run(lambda: __import__("botpipeline.definitions"))
            sampler = PeakSampler({f"worker {i + 1}": pid
                                   for i, pid in enumerate(sorted(worker_pids.values()))})
            sampler.start()
            started = time.perf_counter()
            driver = subprocess.Popen(
                [sys.executable, "-m", "botpipeline_tests.distributed", *dates], cwd=ROOT,
                env={**os.environ, "BOTPIPELINE_EXECUTOR": "dask",
                     "BOTPIPELINE_DASK_SCHEDULER": cluster.scheduler_address},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            sampler.watch("driver", driver.pid)
            out, err = driver.communicate()
            seconds = time.perf_counter() - started
            sampler.stop.set()
            sampler.join()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"backfill driver failed ({driver.returncode}): {err[-3000:]}")
        report = json.loads(lines[-1])
        failed = [r for r in report["runs"] if not r["success"]]
        if driver.returncode or failed:
            why = "; ".join(f"{r['date']}: " + " | ".join(
                f[:300] + " ... " + f[-900:] for f in r["failures"][:2]) for r in failed)
            raise RuntimeError(f"backfill failed ({driver.returncode}): {why}")
        pids = [p for r in report["runs"] for p in r["step_pids"].values()]
        return {"seconds": seconds,
                "step_seconds": sum(r["step_seconds"] for r in report["runs"]),
                "steps_per_worker": [pids.count(p) for p in sorted(worker_pids.values())],
                "peak_mb": {k: v / 2**20 for k, v in sampler.peak.items()}}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def lake_rows(location: str) -> int:
    from botpipeline.storage.lake import ParquetLake

    lake = ParquetLake(location)
    with lake.connect() as con:
        return sum(con.execute(f"SELECT count(*) FROM {t.qualified}").fetchone()[0]
                   for t in lake.tables())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--tweets-per-day", type=int, default=2000)
    parser.add_argument("--minutes-per-day", type=int, default=96)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(only) - set(CONTENDERS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")

    from botpipeline.samples.twitterstream import generate
    from botpipeline_tests.postgres_server import postgres_server
    from botpipeline_tests.s3_server import s3_server

    os.environ.setdefault("BOTPIPELINE_PARTITIONS_START", "2011-09-01")
    work = Path(tempfile.mkdtemp(prefix="distributed_backfill_"))
    sample = work / "sample"
    import datetime as dt

    start = dt.date(2021, 1, 2)
    dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    generate(sample, dates[0], days=args.days, tweets_per_day=args.tweets_per_day, seed=7,
             minutes_per_day=args.minutes_per_day, faults=True)
    print(f"{args.days} generated days ({dates[0]} .. {dates[-1]}), {args.tweets_per_day} "
          f"tweets a day in {args.minutes_per_day} minutes; machine: {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, dict] = {}
    try:
        with postgres_server() as pg, s3_server() as s3:
            home = work / "home"
            home.mkdir()
            shutil.copy(ROOT / "deploy" / "cluster" / "dagster.yaml", home / "dagster.yaml")
            instance_env = {**pg.env(), "DAGSTER_HOME": str(home)}
            for name in only:
                data = work / name
                shutil.copytree(sample, data)
                try:
                    if name == "inprocess":
                        result = in_child(in_process_backfill, str(data), dates)
                        result["peak_mb"] = {"process": result["peak_rss_mb"]}
                        lake = str(data / "lake")
                    else:
                        workers = int(name[4])
                        lake_url = s3.url(f"{name}/lake") if name.endswith("s3") else None
                        result = dask_backfill(data, dates, workers, lake_url, instance_env)
                        lake = lake_url or str(data / "lake")
                    result["rows"] = lake_rows(lake)
                except Exception as error:  # report and go on with the other contenders
                    result = {"error": f"{type(error).__name__}: {str(error)[:3000]}"}
                results[name] = result
                shown = {k: (round(v, 1) if isinstance(v, float) else v)
                         for k, v in result.items() if k != "peak_mb"}
                print(f"{name}: {shown} peak MB "
                      f"{ {k: round(v) for k, v in result.get('peak_mb', {}).items()} }",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nbackfill of", len(dates), "dates")
    print(f"{'contender':<12} {'wall s':>8} {'steps s':>8} {'vs in-process':>14} "
          f"{'vs 1 worker':>12} {'rows':>8}  peak MB per process")
    for name, result in results.items():
        if "error" in result:
            print(f"{name:<12} failed: {result['error'][:300]}")
            continue
        base = results.get("inprocess", {}).get("seconds")
        one = results.get(name.replace("dask2", "dask1"), {}).get("seconds")
        vs_base = f"{result['seconds'] / base:.2f}x" if base else "-"
        vs_one = (f"{one / result['seconds']:.2f}x faster" if one and name.startswith("dask2")
                  else "-")
        steps = f"{result['step_seconds']:.1f}" if "step_seconds" in result else "-"
        peaks = ", ".join(f"{k} {v:.0f}" for k, v in result["peak_mb"].items())
        print(f"{name:<12} {result['seconds']:>8.1f} {steps:>8} {vs_base:>14} {vs_one:>12} "
              f"{result['rows']:>8}  {peaks}")
    for workers in ("dask1", "dask2"):
        local, s3 = results.get(f"{workers}-local", {}), results.get(f"{workers}-s3", {})
        if "seconds" in local and "seconds" in s3:
            print(f"{workers}: lake on loopback S3 / local disk = "
                  f"{s3['seconds'] / local['seconds']:.2f}x")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
