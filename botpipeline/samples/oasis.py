"""Generate an OASIS simulation run folder with known truth (deterministic by seed).

The folder looks like a real BotSocial run (dataset JSON lines, personas CSV with quoted
newlines, follow edges, manifest), with the variations real runs show and the reader must
survive: persona rows in an order that is not user order (``shuffle_personas``), file names
that follow no pattern (``odd_names``: ``modal_dataset_<n>.jsonl``, ``agents_roster.csv``, ...),
quotes and reposts (roots whose ``thread_id`` names another post; a repost has empty text;
replies to a quote carry the quote's id as ``thread_id``), replies at an earlier step than
their parent, and optionally an ``id, username`` file naming each post's author
(``post_usernames``, as OASIS's ``*_training.jsonl``). The truth (user id -> persona,
username) is returned and written outside the run folder.

    python -m botpipeline.samples.oasis OUT_DIR [--users 60] [--steps 24] [--seed 7]
        [--no-shuffle] [--standard-names] [--post-usernames] [--truth PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

# persona -> share of the population (at least one each); a few labels get one persona only,
# so the persona_id alone identifies their row, the rest share their label with others.
POPULATION = {"benign": 0.3, "recovery_support": 0.3, "bullying": 0.08, "misinfo": 0.06,
              "conspiracy": 0.06, "hate_speech": 0.05, "extremist": 0.05, "alpha": 0.0,
              "pro_ana": 0.0, "trad": 0.0, "gamergate": 0.0}
HARMFUL_ACTIVITY = 1.6  # harmful personas post this much more often
TEXTS = {
    "benign": ["Lovely morning walk, anyone else out early?", "Just finished a great book!",
               "Coffee and code, the best combo"],
    "recovery_support": ["One day at a time, proud of this community",
                         "Reminder: asking for help is strength", "Checking in on everyone"],
    "bullying": ["lol look at this loser", "nobody asked you", "imagine posting this"],
    "misinfo": ["They don't want you to know the truth about this",
                "Share before it gets deleted!!", "The data was faked, wake up"],
    "conspiracy": ["Connect the dots people", "Nothing is a coincidence",
                   "Follow the money"],
    "hate_speech": ["Those people are ruining everything", "Send them all back",
                    "They are not like us"],
    "extremist": ["The system must fall", "Join the movement before it's too late",
                  "Only action matters now"],
    "alpha": ["Grind, lift, dominate", "Weak men create hard times",
              "DM me for the course"],
    "pro_ana": ["Skipped lunch again, feeling light", "Thinspo thread below",
                "Hunger is just weakness leaving"],
    "trad": ["Back to tradition", "The old ways were better", "Family first, always"],
    "gamergate": ["Keep politics out of games", "Ethics in journalism, obviously",
                  "Another agenda-driven review"],
}


@dataclass
class GeneratedRun:
    run_dir: Path
    truth: pl.DataFrame  # user_id, persona, username
    posts: int
    replies: int
    quotes: int
    reposts: int


def _population(users: int) -> list[str]:
    labels = list(POPULATION)
    counts = {label: 1 for label in labels}
    rest = users - len(labels)
    if rest < 0:
        raise ValueError(f"need at least {len(labels)} users, one per persona")
    shares = [POPULATION[label] for label in labels]
    total = sum(shares)
    for label, share in zip(labels, shares):
        counts[label] += int(rest * share / total)
    counts["benign"] += users - sum(counts.values())
    return [label for label in labels for _ in range(counts[label])]


def generate_run(out_dir: str | Path, run_id: str = "generated_run", users: int = 60,
                 steps: int = 24, seed: int = 7, shuffle_personas: bool = True,
                 odd_names: bool = True, post_usernames: bool = False,
                 truth_path: str | Path | None = None) -> GeneratedRun:
    rng = random.Random(seed)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    labels = _population(users)
    rng.shuffle(labels)  # user i's persona
    usernames = [f"{label[:6]}_{i:04d}_{hashlib.md5(f'{seed}:{i}'.encode()).hexdigest()[:6]}"
                 for i, label in enumerate(labels)]

    rows = []  # the dataset
    roots: list[str] = []
    by_id: dict[str, dict] = {}
    n_root = n_reply = 0
    quotes = reposts = 0
    for step in range(steps):
        for user in range(users):
            label = labels[user]
            rate = 0.45 * (HARMFUL_ACTIVITY if label not in ("benign", "recovery_support")
                           else 1.0)
            if rng.random() > rate:
                continue
            text = rng.choice(TEXTS[label])
            action = rng.random()
            post: dict
            if roots and action < 0.45:  # reply to a root (sometimes one of a later step)
                n_reply += 1
                parent = by_id[rng.choice(roots)]
                post = {"post_id": f"c_{n_reply}", "thread_id": parent["post_id"],
                        "parent_id": parent["post_id"], "text": "@" + usernames[
                            int(parent["user_id"])] + " " + text}
            elif roots and action < 0.60:  # quote (text) or repost (empty) of a root
                n_root += 1
                target = rng.choice(roots)
                repost = rng.random() < 0.4
                reposts += repost
                quotes += not repost
                post = {"post_id": f"p_{n_root}", "thread_id": target, "parent_id": None,
                        "text": "" if repost else text}
            else:
                n_root += 1
                post = {"post_id": f"p_{n_root}", "thread_id": f"p_{n_root}",
                        "parent_id": None, "text": text}
            post.update({
                "user_id": str(user), "timestamp": str(step), "category_labels": [label],
                "split": "train", "provenance": f"gen:sample persona:{label}",
                "generation_seed": seed, "persona_id": label,
                "needs_thread_context": post["parent_id"] is not None})
            rows.append(post)
            by_id[post["post_id"]] = post
            if post["parent_id"] is None:
                roots.append(post["post_id"])
    # OASIS writes a reply's step as its author acted: some land before the parent's step.
    for post in rows:
        if post["parent_id"] and rng.random() < 0.1:
            post["timestamp"] = str(max(0, int(by_id[post["parent_id"]]["timestamp"]) - 1))
    order = list(range(users))
    if shuffle_personas:
        while order == sorted(order):
            rng.shuffle(order)
    names = ({"dataset": f"modal_dataset_{len(rows)}.jsonl", "personas": "agents_roster.csv",
              "edges": "follow_graph.csv", "manifest": "run_config.yaml",
              "post_usernames": "authors_export.jsonl"} if odd_names else
             {"dataset": f"{run_id}_dataset.jsonl", "personas": f"personas_{run_id}.csv",
              "edges": f"edges_{run_id}.csv", "manifest": f"manifest_{run_id}.yaml",
              "post_usernames": f"{run_id}_training.jsonl"})
    key_order = ["post_id", "thread_id", "user_id", "parent_id", "timestamp", "text",
                 "category_labels", "split", "provenance", "generation_seed", "persona_id",
                 "needs_thread_context"]
    with (run_dir / names["dataset"]).open("w") as fh:
        for post in rows:
            fh.write(json.dumps({k: post[k] for k in key_order}) + "\n")
    personas = pl.DataFrame({
        "username": [usernames[i] for i in order],
        "description": [f"A {labels[i].replace('_', ' ')} persona" for i in order],
        "user_char": [f"Persona sketch for {usernames[i]}.\nStyle: {labels[i]}, steady tone."
                      for i in order],
        "primary_label": [labels[i] for i in order],
        "secondary_label": [None] * users,
        "allowed_labels": [json.dumps([labels[i]]) for i in order],
    })
    personas.write_csv(run_dir / names["personas"])
    edges = sorted({(rng.randrange(users), rng.randrange(users)) for _ in range(users * 3)})
    pl.DataFrame({"follower_id": [a for a, b in edges if a != b],
                  "followee_id": [b for a, b in edges if a != b]}).write_csv(
        run_dir / names["edges"])
    population = {f"persona_{label}_mvp": labels.count(label) for label in POPULATION}
    (run_dir / names["manifest"]).write_text(yaml.safe_dump({
        "run_id": run_id, "population": population, "graph": {"type": "seeded", "seed": seed},
        "personas_csv": f"data/runs/{names['personas']}",
        "edges_csv": f"data/runs/{names['edges']}"}, sort_keys=False))
    if post_usernames:
        with (run_dir / names["post_usernames"]).open("w") as fh:
            for post in rows:
                fh.write(json.dumps({"username": usernames[int(post["user_id"])],
                                     "content": post["text"], "label": post["persona_id"],
                                     "type": "comment" if post["parent_id"] else "post",
                                     "id": post["post_id"]}) + "\n")
    (run_dir / "README.txt").write_text(f"generated OASIS-like run {run_id}, seed {seed}\n")
    truth = pl.DataFrame({"user_id": [str(i) for i in range(users)], "persona": labels,
                          "username": usernames})
    if truth_path is not None:
        Path(truth_path).parent.mkdir(parents=True, exist_ok=True)
        truth.write_csv(truth_path)
    return GeneratedRun(run_dir, truth, n_root - quotes - reposts, n_reply, quotes, reposts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--run-id", default="generated_run")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-shuffle", action="store_true")
    parser.add_argument("--standard-names", action="store_true")
    parser.add_argument("--post-usernames", action="store_true")
    parser.add_argument("--truth", default=None, help="where to write the truth CSV "
                        "(default: <out_dir>.truth.csv, outside the run folder)")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    run = generate_run(out, args.run_id, args.users, args.steps, args.seed,
                       not args.no_shuffle, not args.standard_names, args.post_usernames,
                       args.truth or out.with_name(out.name + ".truth.csv"))
    print(f"{run.run_dir}: {run.posts} posts, {run.replies} replies, {run.quotes} quotes, "
          f"{run.reposts} reposts, {run.truth.height} users")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
