"""The shipped sample through the real assets: counts equal the generator's truth, and the
README's analyst queries run against the resulting database."""

from __future__ import annotations

import json
import re
import shutil

import dagster as dg
import duckdb
import pytest

from botpipeline.defs.raw.twitterstream import raw_tweets
from botpipeline.defs.resources import Warehouse
from botpipeline_tests.conftest import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "data"
DATES = sorted(p.name for p in (SAMPLE / "incoming" / "twitterstream").iterdir())


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    shutil.copytree(SAMPLE / "incoming", root / "incoming")
    warehouse = Warehouse(data_dir=str(root), analysts_database=str(root / "analysts.duckdb"))
    results = {}
    for key in DATES:
        result = dg.materialize([raw_tweets], partition_key=key,
                                resources={"warehouse": warehouse})
        assert result.success
        results[key] = result.get_asset_materialization_events()[0].materialization.metadata
    return root, results


def test_sample_has_three_days():
    assert DATES == ["2021-01-02", "2021-01-03", "2021-01-04"]


@pytest.mark.parametrize("key", DATES)
def test_counts_equal_generator_truth(sample_run, key):
    _, results = sample_run
    meta = {name: value.value for name, value in results[key].items()}
    truth = json.loads((SAMPLE / "truth" / "twitterstream" / f"{key}.json").read_text())
    assert meta["lines_read"] == truth["lines"]
    assert meta["blank_lines"] == truth["blank_lines"]
    assert meta["tweet_lines"] == truth["tweet_lines"]
    assert meta["dagster/row_count"] == truth["unique_tweets"]
    assert meta["duplicate_tweet_lines"] == truth["duplicate_tweet_lines"]
    by_type = meta["lines_by_message_type"]
    assert by_type.pop("delete") == truth["delete_notices"]
    assert by_type.pop("tweet") == truth["tweet_lines"]
    assert by_type == truth["other_notices"]
    assert meta["quarantined_lines"] == sum(truth["bad_lines"].values())
    assert meta["members_skipped"] == {"dot-file": truth["dotfile_members"],
                                       "empty member": truth["empty_members"]}
    assert meta["tweet_lines"] + meta["notice_lines"] + meta["quarantined_lines"] \
        == meta["lines_read"]


def test_readme_queries_run(sample_run):
    root, _ = sample_run
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
    assert len(statements) >= 4
    with duckdb.connect(str(root / "analysts.duckdb"), read_only=True) as con:
        for statement in statements:
            rows = con.execute(statement).fetchall()
            assert rows, f"no rows from README query:\n{statement}"
