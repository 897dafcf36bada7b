"""Export reconstructed threads as Open Assistant message trees and prompt/reply pairs.

A tree is one JSON object per line (``*.trees.jsonl.gz``) in the Open Assistant export shape:
``message_tree_id``, ``tree_state``, and ``prompt``, a message with nested ``replies``. Each
message has a ``message_id`` that is a UUID derived deterministically from the platform and
the post id (uuid5), its ``parent_id``, ``text``, ``role`` (prompter at even depths,
assistant at odd ones, as Open Assistant alternates them), ``lang``, ``created_date`` and the
original ``platform`` / ``post_id`` / ``author_id``. Pairs (``*.pairs.jsonl.gz``) are every
parent/child message pair of the same trees.

Building nested JSON is serialization, done here in Python over rows DuckDB has already
filtered and ordered; the selection itself (thread size, language, deletions) is SQL.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

NAMESPACE = uuid.UUID("6f1c3a52-7d0e-4a8b-9a53-0b4f2e0c8d11")  # botpipeline's uuid5 namespace
ROLES = ("prompter", "assistant")


def message_uuid(platform: str, post_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{platform}:{post_id}"))


def build_trees(rows: Iterable[dict]) -> Iterator[dict]:
    """Nest rows into trees.

    ``rows`` are ordered by root, then depth, and carry platform, post_id, parent_id, root_id,
    depth, author_id, text, lang, created_at. A row whose parent is not in its tree (dropped by
    a filter) is left out with its subtree.
    """
    current_root, tree, by_id = None, None, {}
    for row in rows:
        if row["root_id"] != current_root:
            if tree is not None:
                yield tree
            current_root, tree, by_id = row["root_id"], None, {}
        message = {
            "message_id": message_uuid(row["platform"], row["post_id"]),
            "parent_id": None, "text": row["text"], "role": ROLES[row["depth"] % 2],
            "lang": row["lang"],
            "created_date": row["created_at"].isoformat() if row["created_at"] else None,
            "platform": row["platform"], "post_id": row["post_id"],
            "author_id": row["author_id"], "replies": [],
        }
        if row["depth"] == 0:
            tree = {"message_tree_id": message["message_id"], "tree_state": "ready_for_export",
                    "origin": row["platform"], "prompt": message}
        else:
            parent = by_id.get(row["parent_id"])
            if parent is None:
                continue
            message["parent_id"] = parent["message_id"]
            parent["replies"].append(message)
        by_id[row["post_id"]] = message
    if tree is not None:
        yield tree


def pairs(tree: dict) -> Iterator[dict]:
    stack = [tree["prompt"]]
    while stack:
        message = stack.pop()
        for reply in message["replies"]:
            yield {"message_tree_id": tree["message_tree_id"],
                   "prompt_id": message["message_id"], "reply_id": reply["message_id"],
                   "prompt": message["text"], "reply": reply["text"],
                   "prompt_role": message["role"], "reply_role": reply["role"],
                   "lang": reply["lang"], "prompt_post_id": message["post_id"],
                   "reply_post_id": reply["post_id"], "platform": reply["platform"]}
            stack.append(reply)


def write_export(rows: Iterable[dict], trees_path: Path, pairs_path: Path) -> dict[str, int]:
    """Write both files atomically (temp file + rename); returns counts. The paths may be
    local or fsspec paths (``upath.UPath``) on an object store."""
    counts = {"trees": 0, "messages": 0, "pairs": 0}
    trees_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_trees = trees_path.with_name(trees_path.name + ".tmp")
    tmp_pairs = pairs_path.with_name(pairs_path.name + ".tmp")
    try:
        with tmp_trees.open("wb") as trees_raw, tmp_pairs.open("wb") as pairs_raw, \
                gzip.GzipFile(fileobj=trees_raw, mode="wb", mtime=0) as trees_out, \
                gzip.GzipFile(fileobj=pairs_raw, mode="wb", mtime=0) as pairs_out:
            for tree in build_trees(rows):
                trees_out.write(orjson.dumps(tree) + b"\n")
                counts["trees"] += 1
                for pair in pairs(tree):
                    pairs_out.write(orjson.dumps(pair) + b"\n")
                    counts["pairs"] += 1
                counts["messages"] += _size(tree["prompt"])
        tmp_trees.rename(trees_path)  # replaces (POSIX rename; a copy on object stores)
        tmp_pairs.rename(pairs_path)
    finally:
        tmp_trees.unlink(missing_ok=True)
        tmp_pairs.unlink(missing_ok=True)
    return counts


def _size(message: dict) -> int:
    return 1 + sum(_size(reply) for reply in message["replies"])
