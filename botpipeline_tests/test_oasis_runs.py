"""OASIS runs read as they come: personas by the dataset's own ids, files found by content,
reposts and quotes with OASIS's meaning, and runs scored and evaluated without a server."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import polars as pl
import pytest

from botpipeline.definitions import defs
from botpipeline.readers.oasis import OasisRunError, discover_run, read_run
from botpipeline.samples.oasis import generate_run
from botpipeline.transforms.oasis_personas import assign_personas
from botpipeline_tests.materializations import metadata

REAL_RUN = "prod_100p_100s_65_35"


def _against_truth(personas: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    return truth.join(personas.select("user_id", pl.col("persona").alias("got"),
                                      pl.col("username").alias("got_username"),
                                      "persona_match"), on="user_id", how="left")


def test_generated_run_shuffled_rows_odd_names_every_persona_is_the_truth(tmp_path):
    gen = generate_run(tmp_path / "run", users=60, steps=12, seed=3)
    assert gen.quotes and gen.reposts
    run = read_run(gen.run_dir)
    assert run.files["dataset"].startswith("modal_dataset_")
    assert run.files["personas"] == "agents_roster.csv" and "README.txt" in run.ignored_files
    checked = _against_truth(run.personas, gen.truth)
    assert checked.height == 60 and (checked["got"] == checked["persona"]).all()
    # a row is given only where the files say which: never a wrong username
    named = checked.filter(pl.col("got_username").is_not_null())
    assert (named["got_username"] == named["username"]).all()
    report = run.assignment.report
    assert report["rule"] == "label"
    assert report["row_order_disagreements"]["users"] > 0 and not run.assignment.agrees
    assert report["ambiguous_users"] == checked.filter(
        pl.col("persona_match") == "ambiguous").height > 0
    assert set(report["ambiguous_labels"]) >= {"benign", "recovery_support"}
    singles = gen.truth.group_by("persona").len().filter(pl.col("len") == 1)["persona"]
    assert checked.filter(pl.col("persona").is_in(singles.implode()))[
        "persona_match"].to_list() == ["unique_label"] * singles.len()


def test_generated_run_with_post_usernames_matches_every_row(tmp_path):
    gen = generate_run(tmp_path / "run", users=40, steps=10, seed=5, post_usernames=True)
    run = read_run(gen.run_dir)
    checked = _against_truth(run.personas, gen.truth)
    assert run.assignment.rule == "username" and run.assignment.resolved
    assert (checked["got"] == checked["persona"]).all()
    assert (checked["got_username"] == checked["username"]).all()
    # row order still disagrees, and that is counted
    assert run.assignment.report["row_order_disagreements"]["users"] > 0


def test_rows_in_user_order_are_used_when_the_dataset_agrees(tmp_path):
    gen = generate_run(tmp_path / "run", users=30, steps=8, shuffle_personas=False,
                       odd_names=False)
    run = read_run(gen.run_dir)
    assert run.assignment.rule == "row_order" and run.assignment.agrees
    assert run.assignment.resolved
    assert (_against_truth(run.personas, gen.truth).select(
        (pl.col("got") == pl.col("persona")) & (pl.col("got_username") == pl.col("username"))
    ).to_series()).all()


def test_assignment_counts_every_disagreement():
    posts = pl.DataFrame({"user_id": ["0", "1", "1", "1", "2", "3"],
                          "persona_id": ["a", "b", "b", "c", "b", None]})
    rows = pl.DataFrame({"username": ["x", "y", "z", "w"],
                         "primary_label": ["b", "a", "b", "c"]})
    result = assign_personas(posts, rows)
    users = {r["user_id"]: r for r in result.users.iter_rows(named=True)}
    assert users["0"]["persona"] == "a" and users["0"]["username"] == "y"  # unique row
    assert users["1"]["persona"] == "b" and users["1"]["dataset_persona_ids"] == 2
    assert users["1"]["persona_match"] == users["2"]["persona_match"] == "ambiguous"
    assert users["1"]["username"] is None  # two rows of label b: not invented
    assert users["3"]["persona"] is None and users["3"]["persona_match"] == "no_row"
    report = result.report
    assert report["users_with_several_persona_ids"] == 1
    assert report["row_order_disagreements"] == {"users": 2, "posts": 4, "users_compared": 3}
    assert report["ambiguous_labels"] == {"b": {"users": 2, "rows": 2}}
    # an explicit id column wins; its label disagreeing with the dataset is counted
    keyed = rows.with_columns(pl.Series("user_id", ["2", "0", "1", "3"]))
    result = assign_personas(posts, keyed)
    assert result.rule == "persona_file_user_id"
    assert result.report["matched_row_label_disagreements"] == 0
    assert result.users.filter(pl.col("user_id") == "1")["username"].item() == "z"


def test_files_found_by_content_and_clear_errors(tmp_path):
    gen = generate_run(tmp_path / "run", users=20, steps=4)
    folder = gen.run_dir
    dataset = next(folder.glob("modal_dataset_*.jsonl"))
    shutil.copy(dataset, folder / "other_posts.jsonl")  # e.g. OASIS's *_full.jsonl
    found = discover_run(folder)
    assert found.roles["dataset"] == dataset
    assert "is the only one whose name has 'dataset'" in found.ignored["other_posts.jsonl"]
    shutil.copy(dataset, folder / "copy_dataset.jsonl")
    with pytest.raises(OasisRunError, match=r"3 files could be the dataset \(copy_dataset"):
        discover_run(folder)
    assert discover_run(folder, {"dataset": "other_posts.jsonl"}).roles["dataset"].name == \
        "other_posts.jsonl"
    (folder / "other_posts.jsonl").unlink()
    (folder / "copy_dataset.jsonl").unlink()
    dataset.rename(folder / "posts.txt")
    with pytest.raises(OasisRunError, match="no dataset file found"):
        discover_run(folder)
    with pytest.raises(OasisRunError, match="configured personas file 'nope.csv'"):
        discover_run(folder, {"personas": "nope.csv"})


def test_shared_run_is_unchanged(real_data):
    run = read_run(real_data / f"oasis_{REAL_RUN}")
    assert run.files["dataset"] == f"{REAL_RUN}_dataset.jsonl"
    assert f"{REAL_RUN}_full.jsonl" in run.ignored_files
    report = run.assignment.report
    assert report["rule"] == "username" and run.assignment.agrees and run.assignment.resolved
    assert report["row_order_disagreements"] == {"users": 0, "posts": 0, "users_compared": 100}
    rows = pl.read_csv(real_data / f"oasis_{REAL_RUN}" / f"personas_{REAL_RUN}.csv",
                       infer_schema=False).with_row_index("row")
    same = run.personas.join(rows.select(pl.col("row").cast(pl.Int64).alias("persona_row"),
                                         pl.col("username").alias("u"),
                                         pl.col("primary_label").alias("l")),
                             on="persona_row")
    assert same.height == 100
    assert (same["persona_row"].cast(pl.String) == same["user_id"]).all()
    assert (same["username"] == same["u"]).all() and (same["persona"] == same["l"]).all()


def _simulate(data_dir, run_dir, run_id):
    target = data_dir / "incoming" / "oasis" / run_id
    shutil.copytree(run_dir, target)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("oasis_runs", [run_id])
    result = defs.resolve_job_def("simulation_pipeline").execute_in_process(
        partition_key=run_id, instance=instance)
    assert result.success
    return result


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_generated_run_through_the_pipeline_scored_and_evaluated(data_dir, tmp_path):
    gen = generate_run(tmp_path / "gen", users=40, steps=10, seed=11)
    result = _simulate(data_dir, gen.run_dir, "gen_run")
    checks = _checks(result)
    agree = checks["persona_rows_agree_with_dataset"]
    assert not agree.passed and agree.severity == dg.AssetCheckSeverity.WARN
    assert agree.metadata["rule"].value == "label"
    assert "label" in agree.description and agree.metadata[
        "row_order_disagreeing_users"].value > 0
    assert not checks["persona_rows_resolved"].passed
    conv = metadata(result, "conversations/simulated_posts")
    assert conv["quirks"]["conversation_id_mismatches"] == 0
    evaluation = metadata(result, "scores/simulated_persona_evaluation")
    assert evaluation["accounts"] == 40
    assert set(evaluation["roc_auc"]) == {"bot_score", "rule_filter", "learned_model"}
    assert evaluation["learned_model"] == "not scored"
    assert not checks["every_detector_scored"].passed
    with duckdb.connect(str(data_dir / "botpipeline.duckdb"), read_only=True) as con:
        truth = dict(gen.truth.select("user_id", "persona").iter_rows())
        for table, column in (("raw.oasis_personas", "user_id"),
                              ("sharkey.plan_accounts", "user_id"),
                              ("scores.simulated_persona_evaluation", "account_id")):
            got = dict(con.execute(f"SELECT {column}, "
                                   f"{'label' if 'evaluation' in table else 'persona'} "
                                   f"FROM {table}").fetchall())
            assert got and all(truth[k] == v for k, v in got.items()), table
        kinds = dict(con.execute("SELECT kind, count(*) FROM core.simulated_posts "
                                 "GROUP BY kind").fetchall())
        assert kinds["quote"] == gen.quotes and kinds["repost"] == gen.reposts
        targets = con.execute("""
            SELECT count(*) FROM core.simulated_posts
            WHERE kind IN ('quote', 'repost')
              AND coalesce(quoted_id, reposted_id) IN (SELECT post_id FROM core.simulated_posts)
              AND conversation_id = post_id""").fetchall()[0][0]
        assert targets == gen.quotes + gen.reposts


def test_shared_run_scored_and_evaluated_without_a_server(data_dir, real_data):
    result = _simulate(data_dir, real_data / f"oasis_{REAL_RUN}", REAL_RUN)
    checks = _checks(result)
    assert checks["persona_rows_agree_with_dataset"].passed
    assert checks["persona_rows_resolved"].passed
    assert metadata(result, "raw/oasis_posts")["persona_rule"] == "username"
    evaluation = metadata(result, "scores/simulated_persona_evaluation")
    assert (evaluation["accounts"], evaluation["positives"]) == (100, 36)
    assert 0.0 < evaluation["roc_auc"]["bot_score"] < 1.0
    features = metadata(result, "features/simulated_account_features")
    assert features["dagster/row_count"] == 100 and features["accounts_without_posts"] == 0
