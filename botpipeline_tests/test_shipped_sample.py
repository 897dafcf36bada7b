"""The shipped sample through the real assets: counts equal the generator's truth, and the
README's analyst queries run against the resulting database."""

from __future__ import annotations

import json
import re

import dagster as dg
import duckdb
import pytest

from botpipeline.definitions import defs
from botpipeline.storage.lake import ParquetLake
from botpipeline_tests.conftest import (PROJECT_ROOT, SAMPLE, SHIPPED_DATES,
                                        copy_shipped_sample)

DATES = list(SHIPPED_DATES)


def run_daily(root, dates: list[str], model: bool = False) -> dict[str, dict]:
    """The main job for ``dates`` on the data dir ``root``: asset -> metadata, per date
    (with ``model``, then the learned model on the shipped labels, as `botpipeline run`)."""
    results = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BOTPIPELINE_DATA_DIR", str(root))
        env.setenv("BOTPIPELINE_DUCKDB", str(root / "analysts.duckdb"))
        with dg.instance_for_test() as instance:
            work = [("daily_pipeline", key, None) for key in dates]
            if model:
                instance.add_dynamic_partitions("label_sets", ["generated_sample"])
                work += [("bot_model", None, {"ops": {"models__bot_classifier": {
                    "config": {"trees": 60}}}})]
                work += [("learned_scores", key, None) for key in dates]
                work += [("evaluate_bot_model", "generated_sample", None)]
            for job, key, config in work:
                result = defs.resolve_job_def(job).execute_in_process(
                    partition_key=key, instance=instance, run_config=config)
                assert result.success
                results.setdefault(key or job, {}).update(
                    {e.asset_key.to_user_string(): e.materialization.metadata
                     for e in result.get_asset_materialization_events()})
    return results


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The main job over the shipped sample, as `botpipeline run` does it."""
    root = tmp_path_factory.mktemp("sample")
    copy_shipped_sample(root)
    return root, run_daily(root, DATES, model=True)


def test_sample_has_three_days():
    shipped = SAMPLE / "incoming" / "twitterstream"
    assert all((shipped / key).is_dir() for key in DATES) and len(DATES) == 3


@pytest.mark.parametrize("key", DATES)
def test_counts_equal_generator_truth(sample_run, key):
    _, results = sample_run
    meta = {name: value.value for name, value in results[key]["raw/tweets"].items()}
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


@pytest.mark.parametrize("key", DATES)
def test_replies_all_accounted(sample_run, key):
    _, results = sample_run
    conv = {n: v.value for n, v in results[key]["conversations/posts"].items()}
    truth = json.loads((SAMPLE / "truth" / "twitterstream" / f"{key}.json").read_text())
    assert conv["replies"] == truth["replies"]
    assert conv["replies_accounted"] == conv["replies"]


def test_open_assistant_export_is_valid(sample_run):
    import gzip

    root, results = sample_run
    meta = results[DATES[-1]]["exports/open_assistant_trees"]
    trees_file = meta["trees_file"].value
    trees = [json.loads(line) for line in gzip.open(trees_file)]
    assert len(trees) == meta["trees"].value > 0

    def walk(message, depth):
        assert message["role"] == ("prompter", "assistant")[depth % 2]
        for reply in message["replies"]:
            assert reply["parent_id"] == message["message_id"]
            walk(reply, depth + 1)

    for tree in trees:
        assert tree["message_tree_id"] == tree["prompt"]["message_id"]
        walk(tree["prompt"], 0)


def test_planted_bots_score_higher(sample_run):
    _, results = sample_run
    for key in DATES:
        scores = {n: v.value for n, v in results[key]["scores/bot_scores"].items()}
        rules = {n: v.value for n, v in results[key]["scores/rule_filter"].items()}
        assert scores["labelled_accounts"] > 500
        assert scores["auc_total_score_vs_planted_truth"] > 0.65
        assert rules["auc_rule_filter_vs_planted_truth"] > 0.65
        assert scores["score_distribution"].startswith("![plot](data:image/png;base64,")


def test_planted_coordination_is_recovered(sample_run):
    """Co-action groups pool two earlier dates, so the last date sees all three days; the
    planted liking groups are binned over the whole week."""
    _, results = sample_run
    last = results[DATES[-1]]
    groups = last["coordination/groups"]["planted_groups_recovery"].value
    assert groups["planted_accounts"] == 90
    for measure in ("account_precision", "account_recall", "pair_precision", "pair_recall"):
        assert groups[measure] >= 0.95, (measure, groups)
    bins = last["coordination/behaviour_bins"]
    for name in ("planted_like_groups_exact_bins", "planted_like_groups_near_bins"):
        found = bins[name].value
        assert found["account_precision"] >= 0.95 and found["account_recall"] >= 0.95, found
    # the exact bins miss the members that skipped a post; the near-identical bins do not
    assert bins["planted_like_groups_near_bins"].value["planted_accounts"] > \
        bins["planted_like_groups_exact_bins"].value["planted_accounts"]
    engagements = {n: v.value for n, v in last["raw/engagements"].items()}
    assert engagements["quarantined_rows"] == 1  # the planted twarc error page


def test_coordination_marts_and_bin_sizes(sample_run):
    root, _ = sample_run
    with duckdb.connect(str(root / "analysts.duckdb"), read_only=True) as con:
        groups = con.sql("SELECT count(*), sum(group_size) FROM marts.coordinated_groups "
                         f"WHERE collection_date = DATE '{DATES[-1]}'").fetchall()[0]
        assert groups == (6, 90)
        shared = con.sql("SELECT min(members_reposting) FROM marts.coordinated_group_reposts"
                         ).fetchall()[0][0]
        assert shared >= 2
        assert con.sql("SELECT count(*) FROM marts.largest_bins").fetchall()[0][0] > 0
        with_bins = con.sql("SELECT count(*) FROM features.account_features "
                            "WHERE co_engagement_bin_size IS NOT NULL").fetchall()[0][0]
        assert with_bins > 0
        corr = con.sql("SELECT count(*) FROM coordination.correlations "
                       "WHERE method = 'spearman' AND r IS NOT NULL").fetchall()[0][0]
        assert corr > 50


def test_rerun_gives_identical_scores(sample_run):
    root, _ = sample_run
    key = DATES[-1]
    lake = root / "lake"
    tables = [("features", "account_features"), ("scores", "bot_scores"),
              ("scores", "rule_filter"), ("conversations", "posts"), ("raw", "engagements"),
              ("coordination", "behaviour_bins"), ("coordination", "co_action_edges"),
              ("coordination", "groups")]
    before = {t: ParquetLake(lake).partition_file(*t, key).read_bytes() for t in tables}
    run_daily(root, [key])
    for table, data in before.items():
        assert ParquetLake(lake).partition_file(*table, key).read_bytes() == data, table


def test_learned_model_trained_on_the_shipped_labels(sample_run):
    root, results = sample_run
    model = {k: v.value for k, v in results["bot_model"]["models/bot_classifier"].items()
             if not k.endswith("plot") and k != "roc_pr_curves"}
    assert model["label_set"] == "generated_sample"
    # labelled accounts that were active
    assert model["label_set_summary"]["generated_sample"]["matched"] > 800
    assert model["cv_roc_auc"] > 0.9
    assert (root / "models" / "bot_classifier" / model["model_version"] / "model.json").exists()
    # One origin: no transfer to choose by, so the benchmark's winner, on profile features.
    assert model["model"] == "logistic_profile" and "like_count" in model["features"]
    for key in DATES:
        scored = results[key]["scores/bot_probability"]
        assert scored["dagster/row_count"].value == \
            results[key]["features/account_features"]["dagster/row_count"].value
        assert scored["auc_vs_planted_truth"].value > 0.9
    evaluation = results["generated_sample"]["scores/model_evaluation"]
    assert evaluation["in_domain_out_of_fold"].value is True
    detectors = evaluation["detectors"].value
    assert set(detectors) == {"learned", "bot_score_13_signals", "rule_filter"}
    with duckdb.connect(str(root / "analysts.duckdb"), read_only=True) as con:
        by = con.sql("SELECT count(*) FILTER (WHERE flagged_by_model), "
                     "count(*) FILTER (WHERE flagged_by_model AND NOT flagged_by_score "
                     "AND NOT flagged_by_rules) FROM marts.flagged_accounts").fetchall()[0]
        assert by[0] > 0
