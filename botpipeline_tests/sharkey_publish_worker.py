"""Publish an OASIS run to a server from a process of its own (the kill-and-resume test runs
this and kills it with SIGKILL at chosen calls).

    SHARKEY_ADMIN_TOKEN=... python -m botpipeline_tests.sharkey_publish_worker URL RUN_DIR WORK

RUN_DIR is an OASIS run folder, or a folder of a saved plan's parquet files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polars as pl

from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.publisher import PARTS, Publisher
from botpipeline.clients.sharkey.tokens import TokenStore
from botpipeline.readers.oasis import read_run
from botpipeline.storage.sharkey_ledger import Ledger
from botpipeline.transforms.sharkey.plan import Plan, plan_publication


def main(argv: list[str]) -> int:
    url, run_dir, work = argv[0], Path(argv[1]), Path(argv[2])
    if (run_dir / "accounts.parquet").exists():  # a saved plan (sharkey/threads' shape)
        plan = Plan(**{name: pl.read_parquet(run_dir / f"{name}.parquet") for name in
                       ("accounts", "notes", "follows", "reactions", "quarantine")})
        run_id, parts = "threads", {"accounts", "profiles", "notes"}
    else:
        run = read_run(run_dir)
        plan = plan_publication(run.posts, run.personas, run.follows)
        run_id, parts = run.run_id, set(PARTS)
    client = SharkeyClient(url, os.environ["SHARKEY_ADMIN_TOKEN"], backoff=0.01)
    ledger = Ledger(work / "ledger.duckdb", client.server, run_id)
    try:
        report = Publisher(plan, client, ledger, TokenStore(work / "tokens", client.server),
                           local_only=run_id == "threads").publish(parts, workers=8)
    finally:
        ledger.close()
    usernames = dict(plan.accounts.select("user_id", "username").rows())
    print(json.dumps({"summary": report.summary(), "failed": len(report.outcome.failed),
                      "blocked": len(report.outcome.blocked),
                      "token_lost": [usernames[t.key] for t in report.outcome.failed
                                     if t.code == "TOKEN_LOST"]}), flush=True)
    return 0 if not report.outcome.failed and not report.outcome.blocked else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
