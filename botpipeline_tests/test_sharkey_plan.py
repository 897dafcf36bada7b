"""The publication plan: usernames, posting order, text rules, interactions, reproducibility."""

from __future__ import annotations

import polars as pl
import pytest

from botpipeline.clients.sharkey.limits import Limit, lower_bound_seconds
from botpipeline.readers.oasis import read_run
from botpipeline.transforms.sharkey.notes import plan_notes, split_text
from botpipeline.transforms.sharkey.plan import PlanSettings, plan_publication
from botpipeline.transforms.sharkey.usernames import map_usernames

OASIS = "oasis_prod_100p_100s_65_35"


def posts(rows):
    schema = {"post_id": pl.String, "user_id": pl.String, "parent_id": pl.String,
              "step": pl.Int64, "text": pl.String, "original_post_id": pl.String}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_row_index("source_line", offset=1).with_columns(
        pl.col("source_line").cast(pl.Int64))


def test_usernames_follow_the_documented_rule():
    personas = pl.DataFrame({
        "user_id": ["0", "1", "2", "3", "4", "5"],
        "username": ["fine_name", "has-dash.dot", "a" * 30, None, "Fine_Name", "a" * 30 + "b"]})
    mapped = map_usernames(personas)
    names = dict(zip(mapped["user_id"], mapped["username"]))
    rules = dict(zip(mapped["user_id"], mapped["username_rule"]))
    assert names["0"] == "fine_name" and rules["0"] == "as_is"
    assert names["1"] == "has_dash_dot" and rules["1"] == "replaced_characters"
    assert len(names["2"]) == 20 and names["2"].startswith("a" * 13 + "_")
    assert rules["2"] == "shortened" and names["5"] != names["2"]  # distinct long names stay
    assert names["3"] == "user_3" and rules["3"] == "generated"
    assert rules["4"] == "deduplicated" and names["4"].lower() != "fine_name"
    assert mapped["username"].str.contains(r"^[A-Za-z0-9_]{1,20}$").all()
    assert mapped["username"].str.to_lowercase().n_unique() == mapped.height
    assert map_usernames(personas, prefix="s2_")["username"][0] == "s2_fine_name"


def test_replies_wait_for_parents_posted_at_a_later_step():
    frame = posts([
        ["a", "u1", None, 0, "root", None],
        ["b", "u2", "c", 1, "reply to a post from step 3", None],  # the OASIS quirk
        ["c", "u3", "a", 3, "reply to a", None],
        ["d", "u1", None, 2, "   ", None],
        ["e", "u2", None, 4, None, "a"],        # a repost: pure renote
        ["f", "u3", None, 4, "my take", "c"],   # a quote
        ["g", "u1", "zz", 1, "parent missing", None],
    ])
    notes, quarantine = plan_notes(frame, empty_text="…")
    order = notes["note_key"].to_list()
    assert order.index("a") < order.index("c") < order.index("b")
    effective = dict(zip(notes["note_key"], notes["effective_step"]))
    assert effective["b"] == 3  # max(own step 1, parent's 3)
    kinds = dict(zip(notes["note_key"], notes["kind"]))
    assert kinds == {"a": "post", "b": "reply", "c": "reply", "d": "post", "e": "renote",
                     "f": "quote", "g": "post"}
    texts = dict(zip(notes["note_key"], notes["text"]))
    assert texts["d"] == "…" and texts["e"] is None and texts["f"] == "my take"
    rules = dict(zip(notes["note_key"], notes["text_rule"]))
    assert rules["d"] == "empty_placeholder" and rules["e"] == "renote"
    assert quarantine.select("post_id", "reason").rows() == [
        ("g", "parent not in the run: posted as a root")]


def test_reply_cycles_are_broken_and_quarantined():
    frame = posts([["x", "u1", "y", 0, "x", None], ["y", "u2", "x", 0, "y", None],
                   ["z", "u1", "x", 1, "child of the loop", None]])
    notes, quarantine = plan_notes(frame)
    assert set(quarantine["post_id"]) == {"x", "y", "z"}
    assert notes.filter(pl.col("kind") == "reply").height == 0


def test_long_texts_are_split_into_a_self_reply_chain_that_joins_back():
    text = ("word " * 1500).strip()  # 7,499 characters
    parts = split_text(text, 3000)
    assert "".join(parts) == text and all(len(p) <= 3000 for p in parts) and len(parts) == 3
    frame = posts([["a", "u1", None, 0, text, None], ["b", "u2", "a", 1, "reply", None]])
    notes, _ = plan_notes(frame, max_length=3000)
    assert notes["note_key"].to_list() == ["a", "a#1", "a#2", "b"]
    chain = dict(zip(notes["note_key"], notes["reply_to_key"]))
    assert chain == {"a": None, "a#1": "a", "a#2": "a#1", "b": "a"}
    assert set(notes.filter(pl.col("post_id") == "a")["user_id"]) == {"u1"}
    assert split_text("x" * 7000, 3000) == ["x" * 3000, "x" * 3000, "x" * 1000]


@pytest.fixture(scope="module")
def real_plan(request):
    from botpipeline_tests.conftest import REAL_DATA
    if not (REAL_DATA / OASIS).is_dir():
        pytest.skip("real OASIS run not found")
    run = read_run(REAL_DATA / OASIS)
    return run, plan_publication(run.posts, run.personas, run.follows)


def test_real_run_plan_keeps_every_post_and_edge(real_plan):
    run, plan = real_plan
    dataset = plan.notes.filter(pl.col("source") == "dataset")
    assert plan.accounts.height == 100 and dataset.height == 1363
    assert dataset.filter(pl.col("kind") == "reply").height == 882
    assert plan.follows.height == 287 and plan.quarantine.height == 0
    # 57 roots refer to another post through thread_id: 7 pure reposts, 50 quotes.
    kinds = dict(dataset.group_by("kind").len().iter_rows())
    assert kinds == {"post": 424, "reply": 882, "quote": 50, "renote": 7}
    assert dataset.filter(pl.col("text_rule") == "empty_placeholder").height == 0
    position = dict(zip(plan.notes["note_key"], plan.notes["order"]))
    replies = plan.notes.filter(pl.col("reply_to_key").is_not_null())
    assert all(position[p] < position[c] for c, p in replies.select("note_key",
                                                                    "reply_to_key").rows())
    renotes = plan.notes.filter(pl.col("source") == "viral")
    assert renotes.height == 60 and (renotes["user_id"] != renotes["renote_of_key"].replace(
        dict(zip(dataset["note_key"], dataset["user_id"])))).all()
    assert plan.reactions.height == 500
    assert plan.reactions.group_by("user_id").len()["len"].max() == 5
    own = plan.reactions.join(plan.notes.select("note_key", pl.col("user_id").alias("a")),
                              on="note_key")
    assert (own["user_id"] != own["a"]).all()  # nobody reacts to themselves


def test_plan_is_reproducible_and_seeded(real_plan):
    run, plan = real_plan
    again = plan_publication(run.posts, run.personas, run.follows)
    for name in ("accounts", "notes", "follows", "reactions"):
        assert getattr(plan, name).equals(getattr(again, name)), name
    other = plan_publication(run.posts, run.personas, run.follows, PlanSettings(seed=1))
    assert not other.reactions.equals(plan.reactions)


def test_reactions_follow_persona_affinity(real_plan):
    _, plan = real_plan
    personas = plan.accounts.select("user_id", "persona")
    pairs = (plan.reactions
             .join(personas, on="user_id")
             .join(plan.notes.select("note_key", pl.col("user_id").alias("author")), on="note_key")
             .join(personas.rename({"user_id": "author", "persona": "author_persona"}),
                   on="author"))
    benign = pairs.filter(pl.col("persona").is_in(["benign", "recovery_support"]))
    mainstream = benign["author_persona"].is_in(["benign", "recovery_support"]).mean()
    assert mainstream > 0.9  # benign accounts mostly react to benign content


def test_lower_bound_is_account_creation_then_the_slowest_account():
    limits = {"admin/accounts/create": Limit(2, 1000), "notes/create": Limit(1, 1000),
              "*": Limit(10, 1000)}
    calls = {("admin", "admin/accounts/create"): 4, ("a", "notes/create"): 4,
             ("b", "notes/create"): 2, ("c", "notes/create"): 1, ("d", "notes/create"): 1}
    bound = lower_bound_seconds(calls, limits=limits)
    # creation slots at 0, 0, 0.5, 1.0 s; a needs 3 s, b 1 s: a first -> max(3, 1, .5, 1)
    assert bound["seconds"] == pytest.approx(3.0)
    assert bound["account_creation_seconds"] == pytest.approx(1.0)
    assert bound["slowest_account"] == "a"


def test_repost_roots_become_renotes_and_quotes():
    frame = posts([["a", "u1", None, 0, "root", None], ["b", "u2", None, 1, "", None],
                   ["c", "u3", None, 1, "so true", None]]).with_columns(
        pl.Series("thread_id", ["a", "a", "a"])).drop("original_post_id")
    personas = pl.DataFrame({"user_id": ["u1", "u2", "u3"], "username": ["x", "y", "z"],
                             "primary_label": ["benign"] * 3, "description": [""] * 3})
    plan = plan_publication(frame, personas, pl.DataFrame(
        schema={"follower_id": pl.String, "followee_id": pl.String}),
        PlanSettings(viral_posts=0, reactions_per_account=0))
    kinds = dict(zip(plan.notes["note_key"], plan.notes["kind"]))
    assert kinds == {"a": "post", "b": "renote", "c": "quote"}
    assert set(plan.notes.filter(pl.col("kind") != "post")["renote_of_key"]) == {"a"}


def test_references_to_pure_renotes_go_to_the_reposted_post():
    frame = posts([["a", "u1", None, 0, "root", None], ["b", "u2", None, 1, "", "a"],
                   ["c", "u3", "b", 2, "reply to a renote", None],
                   ["d", "u1", None, 2, "quote of a renote", "b"]])
    notes, quarantine = plan_notes(frame)
    refs = {k: (r, o) for k, r, o in notes.select("note_key", "reply_to_key",
                                                  "renote_of_key").rows()}
    assert refs == {"a": (None, None), "b": (None, "a"), "c": ("a", None), "d": (None, "a")}
    assert set(quarantine["post_id"]) == {"c", "d"}
