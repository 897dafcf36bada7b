"""Publishing the real OASIS run to a Misskey-compatible server: wall time vs the rate limits.

For each rate-limit table the test server (botpipeline_tests/misskey_server.py) runs in its
own process, fresh, and two publishers run against it, each in a fresh process:
- project: the concurrent publisher (16 workers, one call in flight per account and endpoint);
- sequential: seed 000's shape without its fixed sleeps: the same calls (same client, ledger
  and task code) one after another in the seed's phase order (accounts, profiles, notes roots
  first, renotes, follows, reactions), sleeping out each 429 as the seed's client did. The
  seed's own plan (2-12 s of sleep after every call, 5-6 hours) is printed, not run.
Tables: ``sharkey`` = Sharkey 2024.11's limits as they are; ``tight`` = buckets 20× smaller
and a clock 10× faster, so every account's own limits bind (notes 15 at once, then one per
1.2 s). The bound is limits.lower_bound_seconds: the least time the server's limits allow.

    python benchmarks/sharkey_publish.py [--run DIR] [--tables sharkey,tight] [--skip-sequential]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import in_child  # noqa: E402

DEFAULT_RUN = Path(os.environ.get("BOTPIPELINE_REAL_DATA", ROOT.parent / "shared" / "data")) \
    / "oasis_prod_100p_100s_65_35"
# Seed 000's table of sleeps per item (section 5.3), applied to the plan's counts.
SEED_SECONDS = {"account": 2, "profile": 8, "note": 12, "reaction": 3, "follow": 3}


def tables() -> dict[str, dict]:
    from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, scaled

    sharkey = dict(SHARKEY_LIMITS)
    return {"sharkey": sharkey, "tight": scaled(sharkey, max_divisor=20, time_divisor=10)}


def start_server(limits: dict) -> tuple[subprocess.Popen, dict]:
    payload = {k: [v.max, v.duration_ms] for k, v in limits.items()}
    proc = subprocess.Popen([sys.executable, "-m", "botpipeline_tests.misskey_server",
                             "--limits", json.dumps(payload)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def sequential(publisher, parts: set[str]):
    """Every task in list order (accounts, profiles, notes in plan order, follows, reactions:
    each after what it needs), blocking on every rate limit."""
    import time as clock

    from botpipeline.clients.sharkey.errors import RateLimited
    from botpipeline.clients.sharkey.scheduler import Outcome, Retry

    out, start = Outcome(), clock.monotonic()
    for task in publisher.tasks(parts):
        if task.state != "pending":
            continue
        while True:
            try:
                task.run()
            except RateLimited as exc:
                out.waits += 1
                clock.sleep(exc.retry_in)
                continue
            except Retry as exc:
                clock.sleep(exc.seconds)
                continue
            except Exception as exc:  # noqa: BLE001 - counted, like the project's failures
                task.error = str(exc)
                out.failed.append(task)
            else:
                out.done[task.kind] += 1
            break
    out.seconds = clock.monotonic() - start
    return out


def publish(run_dir: str, url: str, admin_token: str, table: str, workers: int) -> dict:
    import resource

    from botpipeline.clients.sharkey.client import SharkeyClient
    from botpipeline.clients.sharkey.publisher import PARTS, Publisher
    from botpipeline.clients.sharkey.tokens import TokenStore
    from botpipeline.readers.oasis import read_run
    from botpipeline.storage.sharkey_ledger import Ledger
    from botpipeline.transforms.sharkey.plan import plan_publication

    run = read_run(run_dir)
    plan = plan_publication(run.posts, run.personas, run.follows)
    work = tempfile.mkdtemp()
    client = SharkeyClient(url, admin_token, limits=tables()[table])
    ledger = Ledger(Path(work) / "ledger.duckdb", client.server, run.run_id)
    publisher = Publisher(plan, client, ledger, TokenStore(Path(work) / "tokens", client.server))
    report = publisher.publish(set(PARTS), workers=workers, dry_run=workers == 0)
    if workers == 0:
        report.outcome = sequential(publisher, set(PARTS))
    outcome = report.outcome
    return {"wall": outcome.seconds, "bound": report.lower_bound["seconds"],
            "published": sum(outcome.done.values()), "failed": len(outcome.failed),
            "blocked": len(outcome.blocked), "rate_limit_waits": outcome.waits,
            "calls": client.calls, "planned": sum(report.planned.values()),
            "seed_sleep_seconds": sum(SEED_SECONDS.get(k, 0) * n
                                      for k, n in report.planned.items()),
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(DEFAULT_RUN))
    parser.add_argument("--tables", default="sharkey,tight")
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    for table in args.tables.split(","):
        contenders = [("project", 16)] + ([] if args.skip_sequential else [("sequential", 0)])
        results = {}
        for name, workers in contenders:
            server, info = start_server(tables()[table])
            try:
                results[name] = in_child(publish, args.run, info["url"], info["admin_token"],
                                         table, workers)
            finally:
                server.kill()
                server.wait()
        p = results["project"]
        print(f"\n== rate limits: {table}")
        print(f"   planned objects {p['planned']}, HTTP calls {p['calls']}, "
              f"rate-limit waits {p['rate_limit_waits']}")
        print(f"   lower bound from the server's limits: {p['bound']:.2f} s; "
              f"seed 000's planned sleeps: {p['seed_sleep_seconds'] / 3600:.1f} h")
        for name, r in results.items():
            print(f"   {name:<10} wall {r['wall']:7.2f} s  = {r['wall'] / r['bound']:.2f}x the "
                  f"bound  published {r['published']}  failed {r['failed']}  blocked "
                  f"{r['blocked']}  peak RSS {r['peak_rss_mb']:.0f} MB")
        if "sequential" in results:
            print(f"   project: {results['sequential']['wall'] / p['wall']:.1f}x faster than "
                  f"sequential, {p['seed_sleep_seconds'] / p['wall']:.0f}x faster than the "
                  f"seed's plan")


if __name__ == "__main__":
    main()
