"""One date's daily_pipeline as `botpipeline run` runs it (in process) and as a run launched
from the UI runs it (Dagster's default multiprocess executor: every step in a fresh process
that imports the code location), side by side on the same data, plus the time to import the
code location in a fresh interpreter.

    .venv/bin/python benchmarks/cli_vs_ui_run.py [--date 2021-01-02] [--repeat 2]

Works on a copy of the shipped sample's date (its own data dir and Dagster home, with the
project's dagster.yaml so the pools apply as in the UI). Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data"


def daily_pipeline():
    """The job, for dg.reconstructable (each step process imports it again)."""
    from botpipeline.definitions import defs

    return defs.resolve_job_def("daily_pipeline")


def import_seconds() -> float:
    code = ("import time; t = time.perf_counter(); import botpipeline.definitions; "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default="2021-01-02")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cli_vs_ui_"))
    data, home = work / "data", work / "home"
    for source in ("twitterstream", "engagements"):
        shutil.copytree(SAMPLE / "incoming" / source / args.date,
                        data / "incoming" / source / args.date)
    home.mkdir()
    shutil.copy(ROOT / "botpipeline" / "dagster.yaml", home / "dagster.yaml")
    os.environ.update({"BOTPIPELINE_DATA_DIR": str(data), "DAGSTER_HOME": str(home),
                       "BOTPIPELINE_DUCKDB": str(data / "botpipeline.duckdb")})

    imports = [import_seconds() for _ in range(3)]
    print(f"import botpipeline.definitions (fresh interpreter): "
          f"median {statistics.median(imports):.2f} s of {[round(s, 2) for s in imports]}")

    import dagster as dg

    # The job's executor as a UI launch runs it (the code location's executor). Before issue
    # 18 that was Dagster's default, multiprocess with spawn: measured 156.3 s against 23.8 s
    # in process (6.6x) on the shared 2-core machine at load 8.
    launches = {"UI launch (the code location's executor)": None}
    times: dict[str, list[float]] = {"in process (botpipeline run)": []}
    times.update({name: [] for name in launches})
    with dg.DagsterInstance.get() as instance:
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = daily_pipeline().execute_in_process(partition_key=args.date,
                                                         instance=instance)
            assert result.success
            times["in process (botpipeline run)"].append(time.perf_counter() - started)
            for name, run_config in launches.items():
                started = time.perf_counter()
                with dg.execute_job(dg.reconstructable(daily_pipeline), instance=instance,
                                    run_config=run_config,
                                    tags={"dagster/partition": args.date}) as launched:
                    assert launched.success
                times[name].append(time.perf_counter() - started)
    cli = statistics.median(times["in process (botpipeline run)"])
    for name, seconds in times.items():
        print(f"{name}: median {statistics.median(seconds):.1f} s of "
              f"{[round(s, 1) for s in seconds]} ({statistics.median(seconds) / cli:.2f}x "
              f"botpipeline run)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
