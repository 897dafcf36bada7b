"""Correlation analysis on frames with known answers, its figures, and the Botometer CSV reader."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from scipy import stats

from botpipeline.readers.botometer import (
    SCORES_SCHEMA,
    merge_botometer,
    read_botometer_csv,
)
from botpipeline.readers.twitterstream.messages import QUARANTINE_SCHEMA
from botpipeline.transforms import correlation_plots
from botpipeline.transforms.correlation_plots import (
    correlation_heatmap,
    feature_histograms,
    scatter_matrix_pairs,
)
from botpipeline.transforms.correlations import (
    RESULT_SCHEMA,
    correlation_matrices,
    correlation_square,
)


def _get(corr: pl.DataFrame, method: str, a: str, b: str) -> dict:
    (row,) = corr.filter((pl.col("method") == method) & (pl.col("feature_a") == a)
                         & (pl.col("feature_b") == b)).to_dicts()
    return row


# ---------------------------------------------------------------------------- correlations
def test_shape_order_and_schema():
    frame = pl.DataFrame({"a": [1, 2, 3, 4], "name": ["w", "x", "y", "z"],
                          "b": [1.0, 3.0, 2.0, 5.0], "c": [True, False, True, True]})
    corr = correlation_matrices(frame)
    assert corr.schema == pl.Schema(RESULT_SCHEMA)
    assert corr.select("method", "feature_a", "feature_b").rows() == [
        ("pearson", "a", "b"), ("pearson", "a", "c"), ("pearson", "b", "c"),
        ("spearman", "a", "b"), ("spearman", "a", "c"), ("spearman", "b", "c")]
    # explicit columns keep their order; the pair is (first given, second given)
    assert correlation_matrices(frame, ["b", "a"])["feature_a"].to_list() == ["b", "b"]


def test_perfect_linear_and_anti_correlated():
    x = list(range(10))
    frame = pl.DataFrame({"x": x, "up": [2 * v + 3 for v in x], "down": [-5.0 * v for v in x]})
    corr = correlation_matrices(frame)
    for method in ("pearson", "spearman"):
        up, down = _get(corr, method, "x", "up"), _get(corr, method, "x", "down")
        assert up["r"] == pytest.approx(1.0) and up["n"] == 10 and up["p_value"] < 1e-10
        assert down["r"] == pytest.approx(-1.0) and down["p_value"] < 1e-10
        assert _get(corr, method, "up", "down")["r"] == pytest.approx(-1.0)


def test_monotonic_non_linear():
    x = np.arange(1, 13, dtype=float)
    frame = pl.DataFrame({"x": x, "growth": np.exp(x)})
    corr = correlation_matrices(frame)
    assert _get(corr, "spearman", "x", "growth")["r"] == pytest.approx(1.0)
    pearson = _get(corr, "pearson", "x", "growth")
    assert pearson["r"] < 0.9
    assert pearson["r"] == pytest.approx(stats.pearsonr(x, np.exp(x)).statistic, abs=1e-12)


def test_known_values_and_p_values_match_scipy():
    x = [3.1, 0.4, 2.2, 5.9, 4.4, 1.0, 2.2, 3.3, 0.7, 6.1, 2.9, 4.0]
    y = [1.0, 2.5, 0.3, 4.1, 2.2, 2.0, 1.1, 3.9, 0.2, 2.8, 2.2, 0.9]  # with ties in both
    corr = correlation_matrices(pl.DataFrame({"x": x, "y": y}))
    for method, test in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        want = test(x, y)
        got = _get(corr, method, "x", "y")
        assert got["r"] == pytest.approx(want.statistic, abs=1e-12)
        assert got["p_value"] == pytest.approx(want.pvalue, rel=1e-9)
        assert 0.01 < got["p_value"] < 0.9  # a moderate correlation, not a degenerate one
    assert _get(corr, "pearson", "x", "y")["r"] == pytest.approx(0.4982, abs=1e-4)


def test_pairwise_deletion_of_nulls_and_nan():
    frame = pl.DataFrame({
        "a": [1.0, 2.0, None, 4.0, 5.0, float("nan"), 7.0, 8.0],
        "b": [2.0, 1.0, 4.0, None, 6.0, 5.0, 9.0, 7.0],
        "c": [1, 2, 3, 4, 5, 6, 7, None],
    })
    corr = correlation_matrices(frame)
    assert _get(corr, "pearson", "a", "b")["n"] == 5  # rows 0, 1, 4, 6, 7
    assert _get(corr, "pearson", "a", "c")["n"] == 5  # rows 0, 1, 3, 4, 6
    assert _get(corr, "spearman", "b", "c")["n"] == 6  # rows 0, 1, 2, 4, 5, 6
    keep = [0, 1, 4, 6, 7]
    a = [frame["a"][i] for i in keep]
    b = [frame["b"][i] for i in keep]
    assert _get(corr, "pearson", "a", "b")["r"] == pytest.approx(stats.pearsonr(a, b).statistic)
    assert _get(corr, "spearman", "a", "b")["p_value"] == pytest.approx(
        stats.spearmanr(a, b).pvalue)


def test_infinity_counts_as_missing():
    frame = pl.DataFrame({"a": [1.0, 2.0, 3.0, math.inf, 5.0], "b": [1.0, 2.0, 3.5, 4.0, 5.0]})
    row = _get(correlation_matrices(frame), "pearson", "a", "b")
    assert row["n"] == 4 and row["r"] == pytest.approx(
        stats.pearsonr([1, 2, 3, 5], [1, 2, 3.5, 5]).statistic)


def test_constant_and_too_short_columns_give_null():
    frame = pl.DataFrame({"x": [1, 2, 3, 4, 5], "const": [7, 7, 7, 7, 7],
                          "short": [1.0, 2.0, None, None, None],
                          "const_on_pair": [1.0, 1.0, 1.0, None, 9.0]})
    corr = correlation_matrices(frame)
    for method in ("pearson", "spearman"):
        for other in ("const", "short"):
            row = _get(corr, method, "x", other)
            assert row["r"] is None and row["p_value"] is None
        assert _get(corr, method, "x", "const")["n"] == 5
        assert _get(corr, method, "x", "short")["n"] == 2
        # varies over the column, but not over the rows it shares with "short"
        assert _get(corr, method, "short", "const_on_pair")["r"] is None
        assert _get(corr, method, "x", "const_on_pair")["n"] == 4
        assert _get(corr, method, "x", "const_on_pair")["r"] is not None


def test_boolean_column_is_zero_one():
    gone = [False, False, True, False, True, True, False, True]
    bins = [1, 1, 40, 2, 15, 80, 3, 9]
    corr = correlation_matrices(pl.DataFrame({"bin_size": bins, "disappeared": gone}))
    flags = [int(g) for g in gone]
    assert _get(corr, "pearson", "bin_size", "disappeared")["r"] == pytest.approx(
        stats.pearsonr(bins, flags).statistic)
    assert _get(corr, "spearman", "bin_size", "disappeared")["r"] == pytest.approx(
        stats.spearmanr(bins, flags).statistic)


def test_bad_arguments_raise():
    frame = pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="not numeric"):
        correlation_matrices(frame, ["a", "s"])
    with pytest.raises(ValueError, match="no such columns"):
        correlation_matrices(frame, ["a", "zzz"])
    with pytest.raises(ValueError, match="unknown methods"):
        correlation_matrices(frame, methods=("kendall",))
    assert correlation_matrices(frame).height == 0  # one numeric column: no pairs
    assert correlation_matrices(frame.head(0), ["a"]).schema == pl.Schema(RESULT_SCHEMA)


# ---------------------------------------------------------------------------------- figures
@pytest.fixture
def features() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    bins = rng.zipf(2.0, n).astype(float)
    return pl.DataFrame({
        "bin_size": bins,
        "followers": rng.lognormal(4, 2, n).round(),
        "account_age_days": rng.uniform(10, 4000, n),
        "disappeared": rng.random(n) < 0.2,
        "botometer_overall": np.where(rng.random(n) < 0.1, np.nan, rng.beta(2, 5, n)),
        "empty": [None] * n,
    }, schema_overrides={"empty": pl.Float64})


def _saved(fig, tmp_path, name: str) -> None:
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=50)
    plt.close(fig)
    assert path.stat().st_size > 1000


def test_heatmap(features, tmp_path):
    corr = correlation_matrices(features)
    for method in ("pearson", "spearman"):
        _saved(correlation_heatmap(corr, method, f"{method} correlations"), tmp_path, method)
    _saved(correlation_heatmap(corr.head(0), "pearson", "nothing"), tmp_path, "empty")


def test_square_matrix_for_the_heatmap():
    corr = correlation_matrices(pl.DataFrame({"a": [1, 2, 3], "k": [1, 1, 1], "c": [3, 1, 2]}))
    features, square = correlation_square(corr, "pearson")
    assert features == ["a", "k", "c"]
    assert square[0, 2] == square[2, 0] == pytest.approx(-0.5)
    assert square[0, 0] == square[2, 2] == 1.0
    assert np.isnan(square[1]).all() and np.isnan(square[:, 1]).all()  # constant: undefined


def test_histograms(features, tmp_path):
    fig = feature_histograms(features, list(features.columns), "features")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 6
    assert fig.axes[0].get_yscale() == "log"  # zipf bin sizes are skewed
    assert fig.axes[2].get_yscale() == "linear"  # uniform account age is not
    _saved(fig, tmp_path, "hist")


def test_scatter_pairs(features, tmp_path, monkeypatch):
    monkeypatch.setattr(correlation_plots, "SCATTER_MAX_POINTS", 50)  # exercise sampling
    pairs = [("bin_size", "botometer_overall"), ("followers", "botometer_overall"),
             ("account_age_days", "disappeared"), ("bin_size", "empty")]
    fig = scatter_matrix_pairs(features, pairs, "bin size vs bot score")
    assert fig.axes[0].get_xscale() == "log"
    _saved(fig, tmp_path, "scatter")


# --------------------------------------------------------------------------- Botometer CSV
V4_HEADER = ("user.majority_lang,user.user_data.id_str,user.user_data.screen_name,cap.english,"
             "cap.universal,raw_scores.english.overall,raw_scores.english.astroturf,"
             "raw_scores.universal.overall,raw_scores.universal.astroturf,"
             "raw_scores.universal.fake_follower,raw_scores.universal.financial,"
             "raw_scores.universal.other,raw_scores.universal.self_declared,"
             "raw_scores.universal.spammer,display_scores.universal.overall")


def _csv(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _read(tmp_path, name: str, text: str | bytes, **kwargs):
    scores, quarantine = read_botometer_csv(_write(tmp_path, name, text), **kwargs)
    assert scores.schema == pl.Schema(SCORES_SCHEMA)
    assert quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    return scores, quarantine


def test_v4_flattened(tmp_path):
    text = _csv(
        V4_HEADER,
        "en,1001,alice,0.81,0.72,0.9,0.6,0.85,0.2,0.3,0.1,0.4,0.05,0.02,4.3",
        "da,1002,@Bob,0.5,0.4,,,0.12,0.05,0.1,0,0.2,0.01,0,0.6",
        "en,1003,carol,0.33,0.3,0.7,0.66,,,,,,,,",  # no universal scores: english
    )
    scores, quarantine = _read(tmp_path, "v4.csv", text)
    assert quarantine.height == 0
    assert scores.rows() == [
        ("1001", "alice", 0.85, 0.2, 0.3, 0.1, 0.4, 0.05, 0.02, 0.72, None, "v4.csv"),
        ("1002", "Bob", 0.12, 0.05, 0.1, 0.0, 0.2, 0.01, 0.0, 0.4, None, "v4.csv"),
        ("1003", "carol", 0.7, 0.66, None, None, None, None, None, 0.33, None, "v4.csv"),
    ]


def test_v4_underscore_names_and_flat_categories(tmp_path):
    text = ("user_id_str,raw_scores_universal_overall,Fake_Follower,spammer,cap\n"
            "42,0.5,0.25,0.75,0.6\n")
    scores, quarantine = _read(tmp_path, "flat.csv", text)
    row = scores.row(0, named=True)
    assert quarantine.height == 0 and row["account_id"] == "42"
    assert (row["botometer_overall"], row["botometer_fake_follower"],
            row["botometer_spammer"], row["botometer_cap"]) == (0.5, 0.25, 0.75, 0.6)


def test_lite(tmp_path):
    text = "tweet_id,user_id,botscore\n9,1001,0.31\n10,1006,0.9\n11,1007,0\n"
    scores, quarantine = _read(tmp_path, "lite.csv", text)
    assert quarantine.height == 0
    assert scores.select("account_id", "botometer_lite").rows() == [
        ("1001", 0.31), ("1006", 0.9), ("1007", 0.0)]
    assert scores["botometer_overall"].null_count() == 3


def test_display_scale_detected(tmp_path):
    text = "screen_name;overall;astroturf;cap\nAlice;4,5;0.5;0.9\nzed;2.5;0;0.1\n"
    scores, quarantine = _read(tmp_path, "display.csv", text)
    assert quarantine.height == 0
    # one group: astroturf (max 0.5) is divided by 5 too, because overall reaches 4.5;
    # cap is a probability and is never rescaled; "4,5" is a decimal comma
    assert scores.select("username", "botometer_overall", "botometer_astroturf",
                         "botometer_cap").rows() == [("Alice", 0.9, 0.1, 0.9),
                                                     ("zed", 0.5, 0.0, 0.1)]
    # forcing the raw scale quarantines the values above 1
    scores, quarantine = _read(tmp_path, "display.csv", text, scale="raw")
    assert scores.height == 0 and quarantine["line_number"].to_list() == [2, 3]
    assert "botometer_overall=4,5 is outside [0, 1]" in quarantine["reason"][0]


def test_display_scores_columns_always_divided(tmp_path):
    text = "user_id,display_scores.universal.overall\n1,0.5\n2,5\n"
    scores, _ = _read(tmp_path, "d.csv", text)
    assert scores["botometer_overall"].to_list() == [0.1, 1.0]


def test_bad_ids(tmp_path):
    text = ("user_id,screen_name,botscore\n"
            "12x,,0.2\n"  # bad id, no username: quarantined
            "1.2e+18,good_name,0.3\n"  # bad id, usable username: kept, no id
            ",bad name!,0.4\n"  # neither
            "77,,0.5\n")
    scores, quarantine = _read(tmp_path, "ids.csv", text)
    assert scores.select("account_id", "username", "botometer_lite").rows() == [
        (None, "good_name", 0.3), ("77", None, 0.5)]
    assert quarantine.select("line_number", "scope", "raw").rows() == [
        (2, "line", b"12x,,0.2"), (4, "line", b",bad name!,0.4")]
    assert quarantine["reason"][0].startswith("no usable account id or screen name (id=12x")


def test_non_numeric_and_out_of_range_scores(tmp_path):
    text = ("user_id,raw_scores.universal.overall,raw_scores.universal.spammer\r\n"
            "1,0.2,0.1\r\n"
            "2,high,0.1\r\n"
            "3,0.2,-0.1\r\n"
            "4,1.5,0.3\r\n"  # raw_scores columns are never rescaled
            "5,inf,0.3\r\n"
            "6,NaN,\r\n")  # missing markers: no score at all
    scores, quarantine = _read(tmp_path, "bad.csv", text)
    assert scores["account_id"].to_list() == ["1"]
    assert quarantine.select("line_number", "reason").rows() == [
        (3, "botometer_overall=high is not a number"),
        (4, "botometer_spammer=-0.1 is outside [0, 1]"),
        (5, "botometer_overall=1.5 is outside [0, 1]"),
        (6, "botometer_overall=inf is outside [0, 1]"),
        (7, "no score values"),
    ]
    assert quarantine["raw"][0] == b"2,high,0.1"
    assert quarantine["source_member"].null_count() == 5


def test_flat_column_above_five_is_not_rescaled(tmp_path):
    scores, quarantine = _read(tmp_path, "x.csv", "user_id,overall\n1,0.2\n2,7\n")
    assert scores["botometer_overall"].to_list() == [0.2]
    assert quarantine.select("line_number", "reason").rows() == [
        (3, "botometer_overall=7 is outside [0, 1]")]


@pytest.mark.parametrize("name,content,reason", [
    ("empty.csv", b"", "empty file"),
    ("blank.csv", b"\n  \n", "empty file"),
    ("headerless.csv", b"1001,0.3\n1002,0.4\n", "no header row"),
    ("unknown.csv", b"foo,bar\n1,2\n", "no recognized Botometer columns"),
    ("no_scores.csv", b"user_id,screen_name\n1,a\n", "no recognized Botometer score"),
    ("binary.csv", b"\xff\xfe\x00u\x00s", "not a readable CSV file"),
])
def test_file_level_problems(tmp_path, name, content, reason):
    scores, quarantine = _read(tmp_path, name, content)
    assert scores.height == 0 and quarantine.height == 1
    row = quarantine.row(0, named=True)
    assert row["scope"] == "file" and row["line_number"] is None
    assert row["source_file"] == name and row["reason"].startswith(reason)


def test_missing_file(tmp_path):
    scores, quarantine = read_botometer_csv(tmp_path / "nope.csv")
    assert scores.height == 0 and quarantine["reason"][0].startswith("unreadable file")


def test_header_only_and_ragged_rows(tmp_path):
    scores, quarantine = _read(tmp_path, "h.csv", "user_id,botscore\n")
    assert scores.height == 0 and quarantine.height == 0
    scores, quarantine = _read(tmp_path, "r.csv", "user_id,botscore\n1,0.5,extra\n2,0.25\n")
    assert scores["account_id"].to_list() == ["2"]
    assert quarantine.select("line_number", "reason").rows() == [(2, "expected 2 fields, got 3")]


def test_merge_v4_and_lite(tmp_path):
    v4, _ = _read(tmp_path, "v4.csv", _csv(
        V4_HEADER,
        "en,1001,alice,0.81,0.72,0.9,0.6,0.85,0.2,0.3,0.1,0.4,0.05,0.02,4.3",
        "da,1002,bob,0.5,0.4,,,0.12,0.05,0.1,0,0.2,0.01,0,0.6",
    ))
    lite, _ = _read(tmp_path, "lite.csv", "user_id,botscore\n1001,0.31\n1009,0.9\n")
    by_name, _ = _read(tmp_path, "names.csv", "screen_name,botscore\nALICE,0.99\nbob,0.4\n")
    merged = merge_botometer([v4, lite, by_name])
    assert merged.schema == pl.Schema(SCORES_SCHEMA)
    assert merged.select("account_id", "username", "botometer_overall", "botometer_lite",
                         "source_file").rows() == [
        ("1001", "alice", 0.85, 0.31, "v4.csv; lite.csv; names.csv"),  # lite.csv came first
        ("1002", "bob", 0.12, 0.4, "v4.csv; names.csv"),
        ("1009", None, None, 0.9, "lite.csv"),
    ]
    assert merge_botometer([]).height == 0


def test_repeated_account_in_one_file(tmp_path):
    scores, _ = _read(tmp_path, "dup.csv",
                      "user_id,overall,botscore\n5,0.4,\n5,0.9,0.3\n6,0.1,\n")
    assert scores.select("account_id", "botometer_overall", "botometer_lite").rows() == [
        ("5", 0.4, 0.3), ("6", 0.1, None)]
