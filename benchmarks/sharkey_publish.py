"""Publishing the real OASIS run to a Sharkey- or Misskey-mode server: wall time vs the bound.

For each setting the test server (botpipeline_tests/misskey_server.py) runs in its own process,
fresh, and two publishers run against it:
- project: the `sharkey_publish` job through the assets, as a user launches it (Dagster's
  default executor: the step runs in its own process), after `raw/oasis_posts` is
  materialized in a temp data dir; 16 workers, 8 accounts created at once;
- sequential: seed 000's shape without its fixed sleeps: the same calls (same client, ledger
  and task code) one after another in the seed's phase order (accounts, profiles, notes roots
  first, renotes, follows, reactions), sleeping out each 429 as the seed's client did. The
  seed's own plan (2-12 s of sleep after every call, 5-6 hours) is printed, not run.
Settings:
- ``sharkey``: Sharkey 2024.11's leaky buckets as they are, with X-RateLimit-* headers;
- ``tight``: Sharkey buckets 20x smaller and a clock 10x faster, so every account's own limits
  bind (notes 15 at once, then one per 1.2 s);
- ``misskey``: a real Misskey 2025.7 as the spec's last section saw it: sliding windows that
  count refused calls, no headers, no limit on account creation but realistic latencies
  (account creation 0.8-1.2 s, notes 15 ms, other calls 5 ms);
- ``misskey-tight``: the same with the tight table's windows (notes 15 per 18 s).
The bound (limits.lower_bound_seconds) is the least time the server's limits and its own
measured latency allow, with 8 accounts created at once; the asset reports it in metadata.
429s are the refusals the publisher received.

    python benchmarks/sharkey_publish.py [--run DIR] [--settings sharkey,tight,misskey,misskey-tight]
                                         [--skip-sequential]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import in_child  # noqa: E402

DEFAULT_RUN = Path(os.environ.get("BOTPIPELINE_REAL_DATA", ROOT.parent / "shared" / "data")) \
    / "oasis_prod_100p_100s_65_35"
# Seed 000's table of sleeps per item (section 5.3), applied to the plan's counts.
SEED_SECONDS = {"account": 2, "profile": 8, "note": 12, "reaction": 3, "follow": 3}
MISSKEY_LIMITED = ("notes/create", "following/create", "i/update", "drive/files/create",
                   "signin-flow")
MISSKEY_LATENCY = {"admin/accounts/create": [0.8, 1.2], "notes/create": 0.015, "*": 0.005}


def settings() -> dict[str, dict]:
    """name: flavor, the limit table (client and server agree), the server's latency."""
    from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, scaled

    real = dict(SHARKEY_LIMITS)
    tight = scaled(real, max_divisor=20, time_divisor=10)
    misskey = {k: v for k, v in real.items() if k in MISSKEY_LIMITED}
    misskey_tight = {k: v for k, v in tight.items() if k in MISSKEY_LIMITED}
    return {"sharkey": {"flavor": "sharkey", "limits": real, "latency": None},
            "tight": {"flavor": "sharkey", "limits": tight, "latency": None},
            "misskey": {"flavor": "misskey", "limits": misskey, "latency": MISSKEY_LATENCY},
            "misskey-tight": {"flavor": "misskey", "limits": misskey_tight,
                              "latency": MISSKEY_LATENCY}}


def table_json(limits: dict) -> dict:
    return {k: [v.max, v.duration_ms, v.min_interval_ms] for k, v in limits.items()}


def start_server(setting: dict) -> tuple[subprocess.Popen, dict]:
    command = [sys.executable, "-m", "botpipeline_tests.misskey_server",
               "--flavor", setting["flavor"], "--limits", json.dumps(table_json(setting["limits"]))]
    if setting["latency"]:
        command += ["--latency", json.dumps(setting["latency"])]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def sequential(publisher, parts: set[str]):
    """Every task in list order (accounts, profiles, notes in plan order, follows, reactions:
    each after what it needs), blocking on every rate limit."""
    from botpipeline.clients.sharkey.errors import RateLimited
    from botpipeline.clients.sharkey.scheduler import Outcome, Retry

    out, start = Outcome(), time.monotonic()
    for task in publisher.tasks(parts):
        if task.state != "pending":
            continue
        while True:
            try:
                task.run()
            except RateLimited as exc:
                out.waits += 1
                time.sleep(exc.retry_in)
                continue
            except Retry as exc:
                time.sleep(exc.seconds)
                continue
            except Exception as exc:  # noqa: BLE001 - counted, like the project's failures
                task.error = str(exc)
                out.failed.append(task)
            else:
                out.done[task.kind] += 1
            break
    out.seconds = time.monotonic() - start
    return out


def publish_sequential(run_dir: str, url: str, admin_token: str, name: str) -> dict:
    from botpipeline.clients.sharkey.client import SharkeyClient
    from botpipeline.clients.sharkey.publisher import PARTS, Publisher
    from botpipeline.clients.sharkey.tokens import TokenStore
    from botpipeline.readers.oasis import read_run
    from botpipeline.storage.sharkey_ledger import Ledger
    from botpipeline.transforms.sharkey.plan import plan_publication

    run = read_run(run_dir)
    plan = plan_publication(run.posts, run.personas, run.follows)
    work = Path(tempfile.mkdtemp())
    client = SharkeyClient(url, admin_token, limits=settings()[name]["limits"])
    ledger = Ledger(work / "ledger.duckdb", client.server, run.run_id)
    publisher = Publisher(plan, client, ledger, TokenStore(work / "tokens", client.server),
                          create_workers=1)
    report = publisher.publish(set(PARTS), dry_run=True)
    outcome = sequential(publisher, set(PARTS))
    ledger.close()
    shutil.rmtree(work, ignore_errors=True)
    return {"wall": outcome.seconds, "published": sum(outcome.done.values()),
            "failed": len(outcome.failed), "blocked": 0,
            "refused": sum(client.pacer.refused.values()), "calls": client.calls,
            "planned": sum(report.planned.values()),
            "seed_sleep_seconds": sum(SEED_SECONDS.get(k, 0) * n
                                      for k, n in report.planned.items())}


def sharkey_publish_job():
    from botpipeline.definitions import defs

    return defs.resolve_job_def("sharkey_publish")


def publish_through_assets(run_dir: str, url: str, admin_token: str, name: str) -> dict:
    """The user's way: raw/oasis_posts, then the sharkey_publish job under the default
    executor (its step in a process of its own)."""
    work = Path(tempfile.mkdtemp())
    run_id = Path(run_dir).name.removeprefix("oasis_")
    data = work / "data"
    shutil.copytree(run_dir, data / "incoming" / "oasis" / run_id)
    (work / "home").mkdir()
    os.environ.update({"BOTPIPELINE_DATA_DIR": str(data), "DAGSTER_HOME": str(work / "home"),
                       "BOTPIPELINE_DUCKDB": str(data / "botpipeline.duckdb"),
                       "SHARKEY_URL": url, "SHARKEY_ADMIN_TOKEN": admin_token,
                       "SHARKEY_TOKEN_STORE": str(work / "tokens")})
    import dagster as dg

    from botpipeline.defs.raw.oasis import raw_oasis_posts
    from botpipeline.defs.resources import Warehouse

    try:
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("oasis_runs", [run_id])
            assert dg.materialize([raw_oasis_posts], partition_key=run_id, instance=instance,
                                  resources={"warehouse": Warehouse()}).success
            run_config = {"resources": {"sharkey": {"config": {
                "rate_limits": table_json(settings()[name]["limits"])}}}}
            started = time.monotonic()
            with dg.execute_job(dg.reconstructable(sharkey_publish_job), instance=instance,
                                run_config=run_config,
                                tags={"dagster/partition": run_id}) as result:
                run_wall = time.monotonic() - started
                assert result.success, "the publish job failed"
                meta = {e.asset_key.path[-1]: {k: v.value for k, v in
                                               e.materialization.metadata.items()}
                        for e in result.get_asset_materialization_events()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notes = meta["notes"]
    published = sum(meta[p].get(k, {}).get("published_now", 0)
                    for p, kinds in (("accounts", ["account"]),
                                     ("profiles", ["avatar", "banner", "profile"]),
                                     ("notes", ["note"]), ("renotes", ["renote"]),
                                     ("follows", ["follow"]), ("reactions", ["reaction"]))
                    for k in kinds)
    return {"wall": notes["wall_seconds"], "run_wall": run_wall,
            "bound": notes["lower_bound_seconds"], "latency": notes["server_latency_seconds"],
            "published": published, "failed": 0, "blocked": 0,
            "refused": sum(notes["refused_429"].values()), "refused_by": notes["refused_429"],
            "waits": notes["rate_limit_waits"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(DEFAULT_RUN))
    parser.add_argument("--settings", default="sharkey,tight,misskey,misskey-tight")
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    for name in args.settings.split(","):
        contenders = [("project", publish_through_assets)] + \
            ([] if args.skip_sequential else [("sequential", publish_sequential)])
        results = {}
        for label, fn in contenders:
            server, info = start_server(settings()[name])
            try:
                results[label] = in_child(fn, args.run, info["url"], info["admin_token"], name)
            finally:
                server.kill()
                server.wait()
        p = results["project"]
        print(f"\n== {name} ({settings()[name]['flavor']} mode)")
        print(f"   bound from the server's limits and its measured latency (median s per call: "
              f"{json.dumps(p['latency'])}): {p['bound']:.2f} s")
        for label, r in results.items():
            extra = (f" (whole run with Dagster's step process: {r['run_wall']:.1f} s)"
                     if "run_wall" in r else "")
            print(f"   {label:<10} publish {r['wall']:7.2f} s = {r['wall'] / p['bound']:.2f}x "
                  f"the bound{extra}; published {r['published']}, failed {r['failed']}, "
                  f"429s {r['refused']}, peak RSS {r['peak_rss_mb']:.0f} MB")
        if "sequential" in results:
            s = results["sequential"]
            print(f"   project: {s['wall'] / p['wall']:.1f}x faster than sequential, "
                  f"{s['seed_sleep_seconds'] / p['wall']:.0f}x faster than the seed's plan "
                  f"({s['seed_sleep_seconds'] / 3600:.1f} h of sleeps)")
        if p["refused"]:
            print(f"   429s by endpoint: {p['refused_by']}")


if __name__ == "__main__":
    main()
