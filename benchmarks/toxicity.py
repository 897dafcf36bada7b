"""Benchmark: toxicity scoring throughput on the CPU.

    python benchmarks/toxicity.py [--texts 2000] [--skip-slow]

Texts: the first distinct tweet texts of the shipped sample days
(``data/incoming/twitterstream``), generated ones when there are too few. Detoxify runs a
random model of bert-base size (12 layers, hidden 768, 110 M parameters: the ``original``
model's shape) built locally, through Detoxify's real loading and ``predict()``: nothing is
downloaded, and a random model costs what the trained one costs. Its vocabulary is the
corpus' frequent words plus single characters, so rare words split into pieces as WordPiece
splits them (mean tokens per text are printed).

1. The backends alone (each in a fresh process; model load not counted): profanity;
   Detoxify in input order vs batched by length, batch 16 vs 64, float vs int8.
2. The ``scores/toxicity`` asset over a lake with the same texts as replies on two dates: the
   first date scores every text, the second finds every text in the cache.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import random
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from measure import in_child

from botpipeline.models.local_bert import write_detoxify_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "incoming" / "twitterstream"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def sample_texts(count: int, seed: int = 0) -> list[str]:
    """Distinct tweet texts from the sample tars, topped up with generated ones."""
    texts: dict[str, None] = {}
    for tar_path in sorted(SAMPLE.glob("*/*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar:
                if not member.isfile() or member.name.rsplit("/", 1)[-1].startswith("._"):
                    continue
                raw = tar.extractfile(member).read()
                try:
                    data = (bz2.decompress(raw) if member.name.endswith(".bz2")
                            else gzip.decompress(raw))
                except (OSError, EOFError, ValueError):
                    continue
                for line in data.splitlines():
                    try:
                        tweet = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(tweet, dict) and tweet.get("text"):
                        full = (tweet.get("extended_tweet") or {}).get("full_text")
                        texts[full or tweet["text"]] = None
                    if len(texts) >= count:
                        return list(texts)
    words = ["you", "are", "the", "a", "so", "this", "that", "what", "is", "not", "my", "your",
             "great", "nice", "idiot", "stupid", "love", "hate", "day", "people", "vote",
             "news", "today", "never", "always", "really", "think", "know"]
    rng = random.Random(seed)
    while len(texts) < count:
        texts[" ".join(rng.choices(words, k=rng.randint(4, 40)))] = None
    return list(texts)


def build_model(folder: Path, texts: list[str], layers: int = 12, hidden: int = 768) -> Path:
    """A random BERT of bert-base size in Detoxify's checkpoint format, its vocabulary the
    characters and frequent words of the texts (so tokens per text are realistic)."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalize, split = BertNormalizer(lowercase=True), BertPreTokenizer()
    words = Counter(word for text in texts
                    for word, _ in split.pre_tokenize_str(normalize.normalize_str(text)))
    chars = sorted({c for word in words for c in word})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    vocab += sorted(w for w, n in words.items() if n >= 3 and len(w) > 1)
    return write_detoxify_checkpoint(folder, vocab, hidden=hidden, layers=layers,
                                     heads=hidden // 64, name="bert_base_random.ckpt")


def score_backend(kind: str, texts: list[str], options: dict) -> dict:
    import torch

    from botpipeline.models.toxicity import DetoxifyBackend, ProfanityBackend

    started = time.perf_counter()
    backend = ProfanityBackend() if kind == "profanity" else DetoxifyBackend(**options)
    loaded = time.perf_counter()
    scores = backend.score(texts)
    seconds = time.perf_counter() - loaded
    tokens = None
    if kind == "detoxify":
        lengths = backend.model.tokenizer(texts, truncation=True)["input_ids"]
        tokens = sum(map(len, lengths)) / len(lengths)
    return {"texts_per_s": len(texts) / seconds, "score_s": seconds,
            "load_s": loaded - started, "rows": scores.height, "tokens": tokens,
            "threads": torch.get_num_threads()}


def run_asset(root: str, texts: list[str], model_options: dict) -> dict:
    """The asset over two dates holding the same replies: cold cache, then warm."""
    from datetime import date, datetime

    import dagster as dg
    import polars as pl

    from botpipeline.defs.resources import Warehouse
    from botpipeline.defs.scores.toxicity import ToxicityModel, toxicity_scores
    from botpipeline.storage.lake import ParquetLake
    from botpipeline.transforms.core_model import POST_COLUMNS, conform

    lake = ParquetLake(Path(root) / "lake")
    dates = ["2021-01-02", "2021-01-03"]
    for day, key in enumerate(dates):
        frame = pl.DataFrame({"text": texts}).with_row_index("n").with_columns(
            post_id=pl.format("{}-{}", pl.lit(day), pl.col("n")), kind=pl.lit("reply"),
            platform=pl.lit("twitter"), author_id=(pl.col("n") % 97).cast(pl.String),
            created_at=pl.lit(datetime(2021, 1, 2 + day)))
        lake.write("core", "posts", key, conform(frame, POST_COLUMNS).with_columns(
            collection_date=pl.lit(date.fromisoformat(key))))
    warehouse = Warehouse(data_dir=root, analysts_database=str(Path(root) / "a.duckdb"))
    passes = []
    with dg.instance_for_test() as instance:
        for key in dates:
            started = time.perf_counter()
            result = dg.materialize([toxicity_scores], partition_key=key, instance=instance,
                                    run_config=QUIET, resources={"warehouse": warehouse,
                                               "toxicity_model": ToxicityModel(**model_options)})
            assert result.success
            [event] = result.get_asset_materialization_events()
            meta = {k: v.value for k, v in event.materialization.metadata.items()}
            passes.append({"step_s": time.perf_counter() - started, **meta})
    return {"passes": passes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--skip-slow", action="store_true",
                        help="only the fastest Detoxify setup (by length, batch 16, int8)")
    args = parser.parse_args()
    texts = sample_texts(args.texts)
    mean_chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} distinct texts, {mean_chars:.0f} characters on average")

    with tempfile.TemporaryDirectory(prefix="toxicity_bench_") as tmp:
        folder = Path(tmp) / "model"
        checkpoint = build_model(folder, texts)
        detox = {"checkpoint": str(checkpoint), "huggingface_config_path": str(folder)}
        setups = [("profanity (batch 10,000)", "profanity", {})]
        slow = [("detoxify batch 16, input order", {"batch_size": 16, "by_length": False}),
                ("detoxify batch 64, input order", {"batch_size": 64, "by_length": False}),
                ("detoxify batch 16, by length", {"batch_size": 16}),
                ("detoxify batch 64, by length", {"batch_size": 64})]
        setups += [(name, "detoxify", {**detox, **o}) for name, o in
                   ([] if args.skip_slow else slow)]
        setups.append(("detoxify batch 16, by length, int8", "detoxify",
                       {**detox, "batch_size": 16, "quantize": True}))
        rows = []
        for name, kind, options in setups:
            result = in_child(score_backend, kind, texts, options)
            rows.append((name, result))
            tokens = f"{result['tokens']:.1f}" if result["tokens"] else "-"
            print(f"  {name}: {result['texts_per_s']:,.1f} texts/s, load "
                  f"{result['load_s']:.1f} s, tokens/text {tokens}, "
                  f"{result['peak_rss_mb']:,.0f} MB", flush=True)

        asset_rows = []
        for name, options in [
                ("profanity", {"backend": "profanity"}),
                ("detoxify batch 16, int8", {"backend": "detoxify", "checkpoint": str(checkpoint),
                                             "huggingface_config_path": str(folder),
                                             "batch_size": 16, "quantize": True})]:
            with tempfile.TemporaryDirectory(prefix="lake_", dir=tmp) as root:
                result = in_child(run_asset, root, texts, options)
            asset_rows.append((name, result))
            print(f"  asset, {name}: done", flush=True)

    print("\n## Backends alone (score() only, model load not counted)\n")
    print("| setup | texts/s | seconds | load s | tokens/text | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        tokens = f"{r['tokens']:.1f}" if r["tokens"] else "-"
        print(f"| {name} | {r['texts_per_s']:,.1f} | {r['score_s']:.1f} | {r['load_s']:.1f} | "
              f"{tokens} | {r['peak_rss_mb']:,.0f} |")
    print(f"\ntorch threads: {rows[-1][1]['threads']}")
    print("\n## The scores/toxicity asset, the same texts on two dates\n")
    print("| backend | pass | texts scored | cache hits | model texts/s | texts/s with cache "
          "| step s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in asset_rows:
        for label, p in zip(["1: cold cache", "2: warm cache"], r["passes"]):
            model_rate = f"{p['texts_per_second']:,.1f}" if p["texts_per_second"] else "-"
            print(f"| {name} | {label} | {p['texts_scored']:,} | {p['cache_hits']:,} | "
                  f"{model_rate} | {p['texts_per_second_with_cache']:,.1f} | "
                  f"{p['step_s']:.1f} |")


if __name__ == "__main__":
    main()
