"""`botpipeline`: run the daily pipeline on the shipped sample, refresh the analysts' views.

    botpipeline run [--date D] [--run ID]     every date folder and OASIS run under incoming/,
                    [--train-on SET]          then the learned bot model on a label set
                    [--clear-missing]         (a date whose folder is gone keeps its rows
                                              unless --clear-missing)
    botpipeline catalog                       re-publish the analysts' views
    botpipeline sample [...]                  regenerate the shipped Stream Grab sample

Runs go through the Dagster instance in $DAGSTER_HOME (default ./.dagster, created with the
project's dagster.yaml), so they show up in the UI started with `dagster dev`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

DEFAULT_HOME = Path(".dagster")
_INSTANCE_CONFIG = Path(__file__).parent / "dagster.yaml"


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, or ./.dagster with the project's instance config."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME.absolute())
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(_INSTANCE_CONFIG, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


DAILY_SOURCES = ("twitterstream", "twitter_v2")


def _incoming_dates(data_dir: Path) -> list[str]:
    """Date folders of every daily source."""
    from botpipeline.defs.partitions import daily_partitions

    names = {p.name for source in DAILY_SOURCES
             for p in (data_dir / "incoming" / source).glob("*") if p.is_dir()}
    return sorted(n for n in names if _is_key(daily_partitions, n))


def _incoming_runs(data_dir: Path) -> list[str]:
    from botpipeline.defs.raw.oasis_sensor import RUN_ID

    root = data_dir / "incoming" / "oasis"
    return sorted(p.name for p in root.glob("*") if p.is_dir() and RUN_ID.match(p.name))


def _is_key(partitions, name: str) -> bool:
    try:
        return partitions.has_partition_key(name)
    except Exception:  # not a date at all
        return False


def _bad_dates(dates: list[str]) -> str | None:
    """One line naming the dates that are not partitions and the valid range, or None."""
    from botpipeline.defs.partitions import daily_partitions

    bad = [d for d in dates if not _is_key(daily_partitions, d)]
    if not bad:
        return None
    first = daily_partitions.get_first_partition_key()
    last = daily_partitions.get_last_partition_key()
    return (f"botpipeline run: --date {', '.join(bad)}: not a collection date; give "
            f"YYYY-MM-DD from {first} to {last}")


def cmd_run(args: argparse.Namespace) -> int:
    if args.date and (error := _bad_dates(args.date)):
        print(error, file=sys.stderr)
        return 2
    ensure_dagster_home()
    import dagster as dg

    from botpipeline.definitions import defs
    from botpipeline.defs.inputs import CLEAR_MISSING_TAG
    from botpipeline.defs.partitions import oasis_runs
    from botpipeline.defs.resources import Warehouse

    warehouse = Warehouse()
    dates = args.date or _incoming_dates(warehouse.data_path)
    runs = args.run or ([] if args.date else _incoming_runs(warehouse.data_path))
    if not dates and not runs:
        print(f"nothing to do: no date folders or OASIS runs under "
              f"{warehouse.data_path / 'incoming'}", file=sys.stderr)
        return 1
    failed: list[str] = []
    checks: list[str] = []
    tags = {CLEAR_MISSING_TAG: "true"} if args.clear_missing else None
    with dg.DagsterInstance.get() as instance:
        if runs:
            known = set(instance.get_dynamic_partitions(oasis_runs.name))
            instance.add_dynamic_partitions(oasis_runs.name, [r for r in runs if r not in known])
        work = [("daily_pipeline", key, None) for key in dates] + \
               [("simulation_pipeline", run, None) for run in runs]
        failed += _execute(defs, instance, work, checks, tags)
        _model_work(defs, warehouse, instance, args, failed, checks)
    print(f"analysts' database: {warehouse.analysts_database_path}")
    errors = [c for c in checks if c.startswith("ERROR")]
    if checks:
        print(f"{len(checks)} asset check(s) failed:", file=sys.stderr)
        for line in checks:
            print(f"  {line}", file=sys.stderr)
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
    return 1 if failed or errors else 0


def _failed_checks(result, key: str | None) -> list[str]:
    """One line per failed asset check of a run: severity, asset, partition, check, why."""
    lines = []
    for check in result.get_asset_check_evaluations():
        if check.passed:
            continue
        meta = {k: v.value for k, v in (check.metadata or {}).items()}
        why = check.description or ", ".join(f"{k}={v}" for k, v in list(meta.items())[:4])
        partition = f" [{key}]" if key else ""
        lines.append(f"{check.severity.value} {check.asset_key.to_user_string()}{partition} "
                     f"{check.check_name}: {why}")
    return lines


def _execute(defs, instance, work, checks: list[str], tags: dict | None = None) -> list[str]:
    """Run each (job, partition, run config); print row counts; collect failed checks into
    ``checks``; return what failed."""
    failed = []
    for job_name, key, run_config in work:
        job = defs.resolve_job_def(job_name)
        print(f"== {key or ''}: {job_name}".replace("== : ", "== "), flush=True)
        result = job.execute_in_process(partition_key=key, instance=instance,
                                        run_config=run_config, raise_on_error=False,
                                        tags=tags)
        checks += _failed_checks(result, key)
        if not result.success:
            failed.append(f"{job_name}:{key}" if key else job_name)
            for event in result.all_events:
                if event.is_step_failure and event.step_failure_data.error:
                    print(f"   {event.step_key} failed: "
                          f"{event.step_failure_data.error.message.strip().splitlines()[-1]}",
                          flush=True)
            continue
        for event in result.get_asset_materialization_events():
            meta = event.materialization.metadata
            shown = meta.get("dagster/row_count") or meta.get("cv_roc_auc")
            label = "rows" if "dagster/row_count" in meta else "out-of-fold ROC AUC"
            print(f"   {event.asset_key.to_user_string()}: "
                  f"{shown.value if shown else '-'} {label}")
    return failed


def _model_work(defs, warehouse, instance, args, failed: list[str], checks: list[str]) -> None:
    """Train the learned model on --train-on (when that label set exists); then, with the
    current model, score every date whose scores are missing, older than its features or made
    by another model (a new model rescores every date, so scores.bot_probability never mixes
    models), and evaluate every label set not yet judged by it."""
    from botpipeline.defs.models.automation import evaluation_is_current, stale_score_dates
    from botpipeline.defs.models.bot_classifier import model_store
    from botpipeline.defs.models.labelled_accounts import available
    from botpipeline.defs.partitions import label_sets

    names = available(warehouse)
    known = set(instance.get_dynamic_partitions(label_sets.name))
    instance.add_dynamic_partitions(label_sets.name, [n for n in names if n not in known])
    if args.train_on and args.train_on in names:
        config = {"ops": {"models__bot_classifier": {"config": {"label_set": args.train_on}}}}
        failed += _execute(defs, instance, [("bot_model", None, config)], checks)
    elif args.train_on:
        print(f"no label set {args.train_on!r} under {warehouse.incoming('labels')}: "
              f"the learned model is not trained", flush=True)
    version = model_store(warehouse).current_version()
    if version is None:
        return
    work = [("learned_scores", key, None) for key, _ in stale_score_dates(warehouse, version)]
    work += [("evaluate_bot_model", name, None) for name in names
             if not evaluation_is_current(warehouse, name, version)]
    failed += _execute(defs, instance, work, checks)


def cmd_catalog(args: argparse.Namespace) -> int:
    from botpipeline.defs.resources import Warehouse

    result = Warehouse().refresh_catalog(force=True)
    if not result.published:
        print(result.reason, file=sys.stderr)
        return 1
    print(f"{result.database}: {len(result.views)} views")
    for name, why in result.skipped_views.items():
        print(f"  skipped {name}: {why}")
    return 0


def cmd_lake(args: argparse.Namespace) -> int:
    from botpipeline.defs.resources import Warehouse
    from botpipeline.storage.contracts import Contract

    lake = Warehouse().lake
    if args.action == "evolve":
        if not args.table:
            print("botpipeline lake evolve: name the table, e.g. raw.tweets", file=sys.stderr)
            return 2
        try:
            schema, table = args.table.split(".", 1)
            contract: Contract = lake.allow_new_columns(schema, table)
        except (ValueError, FileNotFoundError) as exc:
            print(f"botpipeline lake evolve: {exc}", file=sys.stderr)
            return 2
        print(f"{contract.table}: the next write may add columns "
              f"({len(contract.columns)} in the contract now)")
        return 0
    committed = lake.manifest()
    print(f"lake {lake.url}: {committed['table_name'].n_unique()} tables, "
          f"{committed.height} committed partitions, {committed['rows'].sum():,} rows")
    import polars as pl

    summary = committed.group_by("table_name").agg(
        pl.len().alias("partitions"), pl.col("rows").sum(),
        pl.from_epoch(pl.col("committed_at").max().cast(pl.Int64)).alias("last_commit"),
    ).sort("table_name")
    for row in summary.iter_rows(named=True):
        print(f"  {row['table_name']:<45} {row['partitions']:>6} partitions "
              f"{row['rows']:>12,} rows  last commit {row['last_commit']:%Y-%m-%d %H:%M:%S}Z")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="botpipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daily pipeline for date folders under incoming/")
    run.add_argument("--date", action="append", help="a collection date (repeatable)")
    run.add_argument("--run", action="append", help="an OASIS run id (repeatable)")
    run.add_argument("--train-on", default="generated_sample", metavar="LABEL_SET",
                     help="label set under incoming/labels/ the learned bot model trains on "
                          "(default: generated_sample; empty: do not train)")
    run.add_argument("--clear-missing", action="store_true",
                     help="a given date whose input folder is gone is emptied (without it "
                          "the date keeps its rows and its run fails, naming them)")
    run.set_defaults(func=cmd_run)
    catalog = sub.add_parser("catalog", help="re-publish the analysts' DuckDB views")
    catalog.set_defaults(func=cmd_catalog)
    lake = sub.add_parser("lake", help="what the lake holds; allow a table new columns")
    lake.add_argument("action", choices=["status", "evolve"], nargs="?", default="status")
    lake.add_argument("table", nargs="?", help="schema.table (for evolve)")
    lake.set_defaults(func=cmd_lake)
    sample = sub.add_parser("sample", help="regenerate the shipped Twitter Stream Grab sample",
                            add_help=False)
    sample.set_defaults(func=None)
    record = sub.add_parser("record-jetstream", add_help=False,
                            help="record the Bluesky firehose (Jetstream) into hourly "
                                 "incoming/bluesky_jetstream/ files; runs until stopped")
    record.set_defaults(func=None)
    args, rest = parser.parse_known_args(argv)
    if args.command == "record-jetstream":
        from botpipeline.clients.jetstream import main as record_main

        return record_main(rest)
    if args.command == "sample":
        from botpipeline.samples.twitterstream import main as sample_main

        return sample_main(rest) or 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
