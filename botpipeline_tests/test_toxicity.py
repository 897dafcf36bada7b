"""Toxicity scoring, offline: Detoxify's real loading and predict() on a tiny model the test
builds, the clear error when no checkpoint is there, and the asset's cache across dates."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from botpipeline.models.local_bert import write_detoxify_checkpoint
from botpipeline.models.toxicity import (
    LABELS,
    DetoxifyBackend,
    ProfanityBackend,
    ToxicityModelUnavailable,
    inflammatory_flags,
    inflammatory_flags_sql,
    text_hash,
    text_hash_sql,
)

WORDS = ["you", "are", "an", "idiot", "stupid", "hate", "kill", "loser", "hello", "there",
         "nice", "day", "love", "this", "thanks", "great", "the", "a", "and", "to", "of", "is",
         "it", "what"]
TEXTS = ["you are an idiot", "hello", "what a great day , thanks and love this",
         "kill it", "the stupid loser is the idiot and it is what it is , hate this", "nice"]


def build_tiny_detoxify(folder: Path, hidden: int = 32, layers: int = 2, heads: int = 2,
                        init: float = 0.5, seed: int = 0) -> tuple[Path, Path]:
    """A tiny random BERT in Detoxify's checkpoint format (about a second to build)."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", *WORDS]
    checkpoint = write_detoxify_checkpoint(folder, vocab, hidden=hidden, layers=layers,
                                           heads=heads, max_length=64, init=init, seed=seed,
                                           name="tiny.ckpt")
    return checkpoint, folder


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, empty model caches, and a record of any connection attempt."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    return build_tiny_detoxify(tmp_path_factory.mktemp("tiny_detoxify") / "model")


# ------------------------------------------------------------------------ Detoxify, real
def test_detoxify_loads_and_scores_a_local_model(tiny, offline):
    checkpoint, folder = tiny
    backend = DetoxifyBackend("original", checkpoint=checkpoint, huggingface_config_path=folder,
                              batch_size=2)
    scores = backend.score(TEXTS)
    assert scores.columns == list(LABELS)
    assert scores.shape == (len(TEXTS), len(LABELS))
    assert scores["sexual_explicit"].null_count() == len(TEXTS)  # "original" has six labels
    six = scores.drop("sexual_explicit").to_numpy()
    assert ((six > 0) & (six < 1)).all()
    assert np.ptp(six, axis=0).min() > 1e-3  # texts differ, so the order checks below bite
    # batching by length must not reorder the output: each text alone gives its own row
    alone = pl.concat([backend.score([text]) for text in TEXTS])
    np.testing.assert_allclose(six, alone.drop("sexual_explicit").to_numpy(), atol=1e-5)
    in_order = DetoxifyBackend("original", checkpoint=checkpoint,
                               huggingface_config_path=folder, batch_size=2, by_length=False)
    np.testing.assert_allclose(six, in_order.score(TEXTS).drop("sexual_explicit").to_numpy(),
                               atol=1e-5)
    assert backend.name.startswith("detoxify:original:tiny.ckpt:")
    assert backend.score([]).shape == (0, len(LABELS))
    assert offline == []


def test_detoxify_quantized(tiny):
    import torch

    checkpoint, folder = tiny
    plain = DetoxifyBackend("original", checkpoint=checkpoint, huggingface_config_path=folder)
    quantized = DetoxifyBackend("original", checkpoint=checkpoint,
                                huggingface_config_path=folder, quantize=True)
    assert quantized.quantized and quantized.name == plain.name + ":int8"
    assert not any(type(m) is torch.nn.Linear for m in quantized.model.model.modules())
    scores = quantized.score(TEXTS).drop("sexual_explicit").to_numpy()
    assert scores.shape == (len(TEXTS), 6) and ((scores > 0) & (scores < 1)).all()
    # the same model, int8: close to the float scores (the random tiny model is touchier
    # than a trained one, so compare by correlation)
    reference = plain.score(TEXTS).drop("sexual_explicit").to_numpy()
    assert np.corrcoef(scores.ravel(), reference.ravel())[0, 1] > 0.9


def test_name_follows_the_checkpoint_content(tmp_path, tiny):
    other, _ = build_tiny_detoxify(tmp_path / "other", seed=1)
    a = DetoxifyBackend("original", checkpoint=tiny[0], huggingface_config_path=tiny[1])
    b = DetoxifyBackend("original", checkpoint=other, huggingface_config_path=tiny[1])
    assert a.name != b.name


# ---------------------------------------------------------------- unavailable, clearly
def test_missing_release_checkpoint_is_one_clear_error(offline):
    started = time.perf_counter()
    with pytest.raises(ToxicityModelUnavailable) as err:
        DetoxifyBackend("original")
    message = str(err.value)
    assert "toxic_original-c1212f89.ckpt" in message and "TORCH_HOME" in message
    assert "`checkpoint`" in message and "huggingface_config_path" in message
    assert "profanity" in message
    assert time.perf_counter() - started < 5 and offline == []


@pytest.mark.parametrize("kwargs, says", [
    ({"checkpoint": "/nowhere/model.ckpt"}, "/nowhere/model.ckpt"),
    ({"model_type": "toxic-giant"}, "unknown Detoxify model_type 'toxic-giant'"),
    ({"device": "tpu"}, "device 'tpu'"),
])
def test_other_settings_fail_clearly(kwargs, says, offline):
    with pytest.raises(ToxicityModelUnavailable) as err:
        DetoxifyBackend(**kwargs)
    assert says in str(err.value) and offline == []


def test_missing_hf_files_fail_clearly(tmp_path, tiny, offline):
    import torch

    checkpoint, _ = tiny
    with pytest.raises(ToxicityModelUnavailable, match="holds no config.json"):
        DetoxifyBackend(checkpoint=checkpoint, huggingface_config_path=tmp_path)
    # a checkpoint naming a hub model that is not in the (empty) HF cache: Detoxify's OSError
    loaded = torch.load(checkpoint, weights_only=False)
    loaded["config"]["arch"]["args"]["model_type"] = "bert-base-uncased"
    hub = tmp_path / "hub.ckpt"
    torch.save(loaded, hub)
    started = time.perf_counter()
    with pytest.raises(ToxicityModelUnavailable, match="HF_HOME") as err:
        DetoxifyBackend(checkpoint=hub)
    assert "OSError" in str(err.value) and time.perf_counter() - started < 10
    assert offline == []


def test_cuda_asked_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ToxicityModelUnavailable, match="sees no CUDA"):
        DetoxifyBackend(device="cuda")


# ------------------------------------------------------------------- helpers, profanity
def test_text_hash_matches_duckdb():
    texts = ["hello", "héllo 🙂 \n\t", "'quoted'", ""]
    frame = pl.DataFrame({"text": texts})
    in_sql = duckdb.sql(f"SELECT {text_hash_sql('text')} AS h FROM frame ORDER BY #1").pl()
    assert sorted(in_sql["h"].to_list()) == sorted(text_hash(t) for t in frame["text"])


def test_flags_polars_and_sql_agree():
    scores = pl.DataFrame({label: [0.1, 0.7, None] for label in LABELS}).with_columns(
        insult=pl.Series([0.6, 0.2, None]))
    flags = inflammatory_flags(scores, 0.5)
    assert flags["severity"].to_list() == [0.6, 0.7, None]
    assert flags["triggered_categories"].to_list() == [
        ["insult"], [label for label in LABELS if label != "insult"], []]
    assert flags["is_inflammatory"].to_list() == [True, True, False]
    in_sql = duckdb.sql(f"SELECT {inflammatory_flags_sql(0.5)} FROM scores").pl()
    assert in_sql.to_dicts() == flags.to_dicts()


def test_profanity_backend():
    backend = ProfanityBackend(batch_size=2)
    scores = backend.score(["you are a fucking idiot", "have a nice day", "shit", "thanks"])
    assert scores.columns == list(LABELS) and backend.name.endswith(":toxicity-only")
    toxic, nice = scores["toxicity"].to_list()[:2]
    assert toxic > 0.9 and nice < 0.5
    assert scores.drop("toxicity").null_count().sum_horizontal().item() == 4 * 6


# ------------------------------------------------------------------------- the asset
def write_posts(lake, date: str, rows: list[tuple[str, str, str | None]]) -> None:
    from botpipeline.transforms.core_model import POST_COLUMNS, conform

    frame = pl.DataFrame(
        {"post_id": [r[0] for r in rows], "kind": [r[1] for r in rows],
         "text": [r[2] for r in rows]}, schema={"post_id": pl.String, "kind": pl.String,
                                                "text": pl.String}
    ).with_columns(platform=pl.lit("twitter"), author_id=pl.col("post_id").str.slice(0, 2),
                   parent_id=pl.lit("1"), created_at=pl.lit(datetime(2021, 1, 2, 12)))
    lake.write("core", "posts", date, conform(frame, POST_COLUMNS).with_columns(
        collection_date=pl.lit(datetime.fromisoformat(date).date())))


DAY1 = [("a1", "reply", "you are a fucking idiot"), ("a2", "reply", "have a nice day"),
        ("a3", "reply", "you are a fucking idiot"), ("b1", "post", "what a shit show"),
        ("b2", "reply", "   "), ("b3", "reply", None), ("c1", "reply", "thanks, great point")]
DAY2 = [("d1", "reply", "you are a fucking idiot"), ("d2", "reply", "have a nice day"),
        ("d3", "reply", "shut up, asshole"), ("d4", "quote", "fucking idiot")]


def run(date: str, data_dir: Path, model=None, **config):
    from botpipeline.defs.resources import Warehouse
    from botpipeline.defs.scores.toxicity import ToxicityModel, toxicity_scores

    result = dg.materialize(
        [toxicity_scores], partition_key=date, raise_on_error=False,
        resources={"warehouse": Warehouse(data_dir=str(data_dir),
                                          analysts_database=str(data_dir / "a.duckdb")),
                   "toxicity_model": model or ToxicityModel(backend="profanity")},
        run_config={"ops": {"scores__toxicity": {"config": config}}} if config else None)
    if not result.success:
        return result, None
    [event] = result.get_asset_materialization_events()
    return result, {k: v.value for k, v in event.materialization.metadata.items()}


def read(data_dir: Path, table: str, date: str) -> pl.DataFrame:
    from botpipeline.storage.lake import ParquetLake

    return pl.read_parquet(ParquetLake(data_dir / "lake").partition_file("scores", table, date))


def test_asset_scores_flags_and_caches(data_dir):
    from botpipeline.storage.lake import ParquetLake

    lake = ParquetLake(data_dir / "lake")
    write_posts(lake, "2021-01-02", DAY1)
    write_posts(lake, "2021-01-03", DAY2)

    result, meta = run("2021-01-02", data_dir)
    assert result.success
    out = read(data_dir, "toxicity", "2021-01-02")
    assert out["post_id"].to_list() == ["a1", "a2", "a3", "c1"]  # replies with text only
    assert meta["texts_scored"] == 3 and meta["cache_hits"] == 0 and meta["distinct_texts"] == 3
    assert meta["model"].startswith("alt-profanity-check-") and meta["flagged"] == 2
    flagged = out.filter("is_inflammatory")
    assert flagged["post_id"].to_list() == ["a1", "a3"]
    assert flagged["triggered_categories"].to_list() == [["toxicity"], ["toxicity"]]
    assert (out["severity"] == out["toxicity"]).all() and out["insult"].null_count() == 4
    assert meta["texts_per_second"] > 0 and meta["dagster/row_count"] == 4

    result, meta2 = run("2021-01-03", data_dir)
    assert result.success
    assert meta2["cache_hits"] == 2 and meta2["texts_scored"] == 1
    assert read(data_dir, "toxicity_cache", "2021-01-03")["text_hash"].to_list() == [
        text_hash("shut up, asshole")]
    day2 = read(data_dir, "toxicity", "2021-01-03")
    assert day2["post_id"].to_list() == ["d1", "d2", "d3"]
    assert day2.filter(pl.col("post_id") == "d1")["toxicity"].item() == \
        out.filter(pl.col("post_id") == "a1")["toxicity"].item()

    # re-running a date replaces exactly what it added, and gives the same output
    before = (read(data_dir, "toxicity", "2021-01-02"),
              read(data_dir, "toxicity_cache", "2021-01-02").drop("scored_at"))
    result, meta3 = run("2021-01-02", data_dir)
    assert result.success and meta3["texts_scored"] == 3 and meta3["cache_hits"] == 0
    assert read(data_dir, "toxicity", "2021-01-02").equals(before[0])
    assert read(data_dir, "toxicity_cache", "2021-01-02").drop("scored_at").equals(before[1])
    from botpipeline.storage.lake import ParquetLake

    with ParquetLake(data_dir / "lake").connect() as con:  # the committed partitions only
        cache = con.sql("SELECT * FROM scores.toxicity_cache").pl()
    assert cache.height == cache.select("model", "text_hash").n_unique() == 4


def test_asset_kinds_and_threshold(data_dir):
    from botpipeline.storage.lake import ParquetLake

    write_posts(ParquetLake(data_dir / "lake"), "2021-01-03", DAY2)
    result, meta = run("2021-01-03", data_dir, kinds=["reply", "quote"], flag_threshold=0.2)
    assert result.success and meta["dagster/row_count"] == 4
    out = read(data_dir, "toxicity", "2021-01-03")
    assert out["kind"].to_list() == ["reply", "reply", "reply", "quote"]
    assert out["is_inflammatory"].to_list() == (out["toxicity"] >= 0.2).to_list()
    assert out["triggered_categories"].list.len().to_list() == out["is_inflammatory"].cast(
        pl.Int64).to_list()
    assert meta["flagged"] == out["is_inflammatory"].sum()
    result, _ = run("2021-01-03", data_dir, kinds=["comment"])
    assert not result.success


def test_asset_without_checkpoint_fails_clearly(data_dir):
    from botpipeline.defs.scores.toxicity import ToxicityModel
    from botpipeline.storage.lake import ParquetLake

    write_posts(ParquetLake(data_dir / "lake"), "2021-01-02", DAY1)
    result, _ = run("2021-01-02", data_dir, model=ToxicityModel(backend="detoxify"))
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.user_failure_data.description)
    assert "checkpoint" in message and "TORCH_HOME" in message and "profanity" in message


def test_asset_runs_detoxify(data_dir, tiny):
    from botpipeline.defs.scores.toxicity import ToxicityModel
    from botpipeline.storage.lake import ParquetLake

    write_posts(ParquetLake(data_dir / "lake"), "2021-01-02", DAY1)
    model = ToxicityModel(backend="detoxify", checkpoint=str(tiny[0]),
                          huggingface_config_path=str(tiny[1]), quantize=True)
    result, meta = run("2021-01-02", data_dir, model=model)
    assert result.success and meta["model"].endswith(":int8") and meta["texts_scored"] == 3
    out = read(data_dir, "toxicity", "2021-01-02")
    assert out["sexual_explicit"].null_count() == 4 and out["insult"].null_count() == 0
