"""A random BERT saved the way Detoxify loads checkpoints, for offline tests and benchmarks.

Detoxify reads ``{"config": {"arch": {"args": ...}, "dataset": {"args": {"classes"}}},
"state_dict": ...}`` and passes ``arch.args.model_type`` to ``from_pretrained``, so for a local
model it must name the folder holding ``config.json`` and the tokenizer files.
"""

from __future__ import annotations

from pathlib import Path

# The label heads of Detoxify's "original" model, as its checkpoints name them.
ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


def write_detoxify_checkpoint(folder: Path, vocab: list[str], *, hidden: int, layers: int,
                              heads: int, max_length: int = 512, init: float = 0.02,
                              seed: int = 0, name: str = "model.ckpt",
                              classes: list[str] = ORIGINAL_CLASSES) -> Path:
    """Write tokenizer, config and a random model under ``folder``; return the checkpoint."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "tokenizer_config.json").write_text(
        f'{{"do_lower_case": true, "model_max_length": {max_length}}}')
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=4 * hidden,
        max_position_embeddings=max_length, num_labels=len(classes), initializer_range=init)
    config.save_pretrained(folder)
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    checkpoint = folder / name
    torch.save({"config": {
        "arch": {"args": {"num_classes": len(classes), "model_type": str(folder),
                          "model_name": "BertForSequenceClassification",
                          "tokenizer_name": "BertTokenizer"}},
        "dataset": {"args": {"classes": classes}}},
        "state_dict": model.state_dict()}, checkpoint)
    return checkpoint
