"""Benchmark: a generated Bluesky Jetstream day through raw/bluesky_jetstream, side by side
with the floor, then the planted co-liking groups through the coordination assets.

    .venv/bin/python benchmarks/ingest_jetstream.py --events 10000000

The input (hourly ``.jsonl.zst`` files as the recorder writes them, and the generator's
truth) is generated once under ``~/.cache/botpipeline/`` (outside the repository). Each
contender runs in a fresh process; its wall time and peak resident memory (sampled every
50 ms, children included) are reported:

- ``floor``: zstd decompression of every file and ``orjson.loads`` of every line, nothing
  kept: what any reader of these files must at least do in Python;
- ``ingest``: ``raw/bluesky_jetstream`` materialized through Dagster (DuckDB parse, every line
  classified, nine tables written to the lake, asset checks);
- ``coordination``: ``core/posts``, ``core/accounts``, ``raw/engagements`` and
  ``coordination/behaviour_bins`` materialized for the date, each in its own process (as
  Dagster's default executor runs steps; time and peak memory per step), then the
  near-identical like bins
  (>= 3 accounts, >= 3 posts) compared with the planted co-liking groups (account precision
  and recall, ``transforms/coordination/groups.recovery``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import in_child  # noqa: E402

DAY = date(2024, 9, 9)


def ensure_input(events: int, seed: int) -> Path:
    from botpipeline.samples.jetstream import DayConfig, write_day

    root = Path.home() / ".cache" / "botpipeline" / f"jetstream-{events}-{seed}"
    if (root / "incoming" / "bluesky_jetstream" / DAY.isoformat() / "_closed.json").exists():
        return root
    write_day(root, DayConfig(day=DAY, events=events, seed=seed))
    return root


def floor(root: str) -> dict:
    import orjson
    import zstandard

    folder = Path(root) / "incoming" / "bluesky_jetstream" / DAY.isoformat()
    lines = 0
    for path in sorted(folder.glob("*.jsonl.zst")):
        with open(path, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        for line in data.split(b"\n"):
            if line:
                orjson.loads(line)
                lines += 1
    return {"events": lines}


def _materialize(root: str, selection: list[list[str]], run_config: dict | None = None
                 ) -> "object":
    import dagster as dg

    os.environ["BOTPIPELINE_DATA_DIR"] = root
    os.environ["BOTPIPELINE_DUCKDB"] = str(Path(root) / "botpipeline.duckdb")
    from botpipeline.definitions import defs

    job = defs.resolve_job_def("bluesky_jetstream_daily")
    result = job.execute_in_process(partition_key=DAY.isoformat(),
                                    asset_selection=[dg.AssetKey(k) for k in selection],
                                    run_config=run_config or {},
                                    instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result


def ingest(root: str) -> dict:
    result = _materialize(root, [["raw", "bluesky_jetstream"]])
    meta = {}
    for event in result.get_asset_materialization_events():
        meta = {k: v.value for k, v in event.materialization.metadata.items()
                if k in ("events_by_outcome", "lines_read", "blank_lines", "seconds",
                         "files_quarantined", "rows_by_table")}
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    outcomes = meta.get("events_by_outcome", {})
    return {"events": sum(outcomes.values()), "outcomes": outcomes, "checks": checks,
            "rows_by_table": meta.get("rows_by_table"), "asset_seconds": meta.get("seconds")}


STEPS = [["core", "posts"], ["core", "accounts"], ["raw", "engagements"],
         ["coordination", "behaviour_bins"]]


def step(root: str, key: list[str], max_set_size: int) -> dict:
    """One asset of the day, materialized in its own process (as Dagster's default executor
    runs each step)."""
    config = {"ops": {"coordination__behaviour_bins": {"config": {
        "max_set_size": max_set_size}}}} if key == STEPS[-1] else None
    _materialize(root, [key], config)
    return {}


def score(root: str) -> dict:
    """The near-identical like bins against the planted co-liking groups."""
    import duckdb
    import polars as pl

    from botpipeline.storage.lake import ParquetLake
    from botpipeline.transforms.coordination.groups import recovery

    con = duckdb.connect()
    ParquetLake(Path(root) / "lake").register_views(con)
    truth = pl.read_csv(Path(root) / "truth" / "bluesky_jetstream" / DAY.isoformat()
                        / "like_groups.csv")
    near = con.sql("SELECT near_bin_id AS group_id, actor FROM coordination.behaviour_bins "
                   "WHERE action = 'like' AND near_bin_size >= 3 AND set_size >= 3").pl()
    exact = con.sql("SELECT bin_id AS group_id, actor FROM coordination.behaviour_bins "
                    "WHERE action = 'like' AND bin_size >= 3 AND set_size >= 3").pl()
    likes = con.execute("SELECT count(*) FROM raw.engagements WHERE action = 'like'"
                        ).fetchall()[0][0]
    return {"engagements_like": likes,
            "near_bins": recovery(near, truth.select("actor", "group")),
            "exact_bins_vs_exact_members": recovery(
                exact, truth.filter(pl.col("exact")).select("actor", "group"))}


def coordination(root: str, max_set_size: int = 200, only_bins: bool = False) -> dict:
    """The coordination assets one step per process; each step's time and peak memory."""
    steps = {}
    for key in STEPS[-1:] if only_bins else STEPS:
        measured = in_child(step, root, key, max_set_size)
        steps["/".join(key)] = {"seconds": round(measured["seconds"], 1),
                                "peak_rss_mb": round(measured["peak_rss_mb"]),
                                "peak_pss_mb": round(measured["peak_pss_mb"])}
    return {"steps": steps, "max_set_size": max_set_size,
            "assets_seconds": round(sum(s["seconds"] for s in steps.values()), 1),
            "peak_rss_mb": max(s["peak_rss_mb"] for s in steps.values()),
            "recovery": in_child(score, root)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--input", help="an existing generated root (skips generation)")
    parser.add_argument("--skip-coordination", action="store_true")
    parser.add_argument("--only-bins", action="store_true",
                        help="the lake holds the day already: materialize behaviour_bins only")
    parser.add_argument("--max-set-size", type=int, default=200,
                        help="behaviour_bins: largest set compared by MinHash (0: all)")
    args = parser.parse_args(argv)
    root = Path(args.input) if args.input else ensure_input(args.events, args.seed)
    folder = root / "incoming" / "bluesky_jetstream" / DAY.isoformat()
    size = sum(p.stat().st_size for p in folder.glob("*.jsonl.zst"))
    print(f"input {folder}: {size / 1e6:.0f} MB zstd", flush=True)
    results = {"input": str(folder), "megabytes_zstd": round(size / 1e6)}
    if not args.only_bins:
        results["floor"] = in_child(floor, str(root))
        print("floor", results["floor"], flush=True)
        results["ingest"] = in_child(ingest, str(root))
        print("ingest", results["ingest"], flush=True)
        f, i = results["floor"], results["ingest"]
        results["summary"] = {
            "events": i["events"], "floor_events_per_s": round(f["events"] / f["seconds"]),
            "ingest_events_per_s": round(i["events"] / i["seconds"]),
            "ratio_to_floor": round(i["seconds"] / f["seconds"], 2),
            "ingest_peak_rss_mb": round(i["peak_rss_mb"]),
            "ingest_peak_pss_mb": round(i["peak_pss_mb"]),
            "floor_peak_rss_mb": round(f["peak_rss_mb"])}
        print("summary", results["summary"], flush=True)
    if not args.skip_coordination:
        results["coordination"] = coordination(str(root), args.max_set_size, args.only_bins)
        print("coordination", json.dumps(results["coordination"], indent=1), flush=True)
    out = root / ("benchmark_bins.json" if args.only_bins else "benchmark.json")
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"written {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
