"""Hand-built, exact tests of the coordination transforms (bins, co-action, null model, groups).

Every frame here is small and written out by hand; every expected value is either written out
or computed in the test from its defining formula, so that a change of behaviour fails loudly.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest
from scipy.stats import poisson

from botpipeline.transforms.coordination.bins import BinConfig, behaviour_bins
from botpipeline.transforms.coordination.co_action import (
    CoActionConfig,
    action_counts_sql,
    actions_sql,
    co_action_edges_sql,
    similar_actions_sql,
    weight_totals_sql,
)
from botpipeline.transforms.coordination.components import component_labels
from botpipeline.transforms.coordination.groups import coordinated_groups, recovery
from botpipeline.transforms.coordination.network import scored_network
from botpipeline.transforms.coordination.null_model import NullModelConfig, score_edges
from botpipeline.transforms.core_model import POST_COLUMNS, conform

# A base instant whose epoch (1704067200) is divisible by 60 and by 180, so that seconds
# after T0 are also positions inside the co-action time buckets.
T0 = datetime(2024, 1, 1)
assert (T0 - datetime(1970, 1, 1)).total_seconds() % 180 == 0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def set_hash(posts: list[str]) -> str:
    """What exact_sets_sql computes: md5 of the sorted post ids joined by commas."""
    return md5(",".join(sorted(posts)))


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def acts_frame(sets: dict[tuple[str, str], list[str]]) -> pl.DataFrame:
    """(action, actor) -> post ids, as the acts(action, actor, post_id) relation."""
    rows = [(action, actor, post) for (action, actor), posts in sets.items() for post in posts]
    return pl.DataFrame(rows, schema=["action", "actor", "post_id"], orient="row")


def bins_of(con, acts: pl.DataFrame, config: BinConfig | None = None):
    con.register("acts", acts)
    try:
        return behaviour_bins(con, "acts", config or BinConfig())
    finally:
        con.unregister("acts")


def as_dict(bins: pl.DataFrame) -> dict[tuple[str, str], tuple]:
    return {(r["action"], r["actor"]): (r["set_size"], r["bin_id"], r["bin_size"],
                                        r["near_bin_id"], r["near_bin_size"])
            for r in bins.iter_rows(named=True)}


# --------------------------------------------------------------------------- 1. exact bins

EXACT = {
    ("like", "u1"): ["p1", "p2", "p3"],
    ("like", "u2"): ["p3", "p1", "p2"],      # same set, other order
    ("like", "u3"): ["p2", "p3", "p1"],
    ("like", "u4"): ["p1", "p2"],            # a different (sub)set: a bin of its own
    ("like", "u6"): ["p10"],
    ("repost", "u1"): ["p1", "p2", "p3"],    # same posts as u1's likes, other action
    ("repost", "u5"): ["p1", "p2", "p3"],
}


def test_exact_bins_group_identical_sets_per_action(con):
    bins, pairs = bins_of(con, acts_frame(EXACT))
    h123, h12, h10 = set_hash(["p1", "p2", "p3"]), set_hash(["p1", "p2"]), set_hash(["p10"])
    # (set_size, bin_id, bin_size, near_bin_id, near_bin_size); no near-identical pairs
    # (2/3 < 0.8, and {p1,p2} is below min_set_size), so near bins are the exact bins.
    assert as_dict(bins) == {
        ("like", "u1"): (3, h123, 3, h123, 3),
        ("like", "u2"): (3, h123, 3, h123, 3),
        ("like", "u3"): (3, h123, 3, h123, 3),
        ("like", "u4"): (2, h12, 1, h12, 1),
        ("like", "u6"): (1, h10, 1, h10, 1),
        # likes and reposts are binned separately: the repost bin holds 2 actors, not 5
        ("repost", "u1"): (3, h123, 2, h123, 2),
        ("repost", "u5"): (3, h123, 2, h123, 2),
    }
    assert pairs.height == 0
    assert bins.columns == ["action", "actor", "set_size", "bin_id", "bin_size", "near_bin_id",
                            "near_bin_size"]
    assert bins["bin_size"].dtype == pl.Int64 and bins["near_bin_size"].dtype == pl.Int64
    # sorted by action, actor
    assert bins.select("action", "actor").rows() == sorted(as_dict(bins))


def test_exact_bins_do_not_depend_on_row_order(con):
    acts = acts_frame(EXACT)
    first, _ = bins_of(con, acts)
    for seed in (1, 2, 3):
        again, _ = bins_of(con, acts.sample(fraction=1.0, shuffle=True, seed=seed))
        assert again.equals(first)
    again, _ = bins_of(con, acts.reverse())
    assert again.equals(first)


def test_exact_bins_leave_no_temporary_relations(con):
    bins_of(con, acts_frame(EXACT))
    names = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() "
                                   "UNION ALL SELECT view_name FROM duckdb_views() "
                                   "WHERE NOT internal").fetchall()}
    assert not names & {"_sets", "_near_labels", "acts"}


# ------------------------------------------------------------------------ 2. near bins

def words(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


S8 = words("s", 8)
NEAR = {
    # A and B: 8 shared of a 10-post union, Jaccard exactly 0.8 -> joined
    ("like", "a1"): S8 + ["xa"], ("like", "a2"): S8 + ["xa"],
    ("like", "b1"): S8 + ["xb"],
    # C and D: 6 shared of 8, Jaccard 0.75 -> not joined
    ("like", "c1"): words("c", 6) + ["xc"], ("like", "d1"): words("c", 6) + ["xd"],
    # E and F: 15 shared of 19, Jaccard 0.789... -> not joined
    ("like", "e1"): words("e", 15) + ["xe1", "xe2"],
    ("like", "f1"): words("e", 15) + ["xf1", "xf2"],
    # the same posts as A and B, but reposted: a separate action, never joined with likes
    ("repost", "a1"): S8 + ["xa"], ("repost", "z1"): S8 + ["xz"],
}


def test_near_bins_join_at_the_threshold_and_not_below(con):
    bins, pairs = bins_of(con, acts_frame(NEAR))
    ha, hb = set_hash(S8 + ["xa"]), set_hash(S8 + ["xb"])
    hz = set_hash(S8 + ["xz"])
    b = as_dict(bins)
    joined = min(ha, hb)
    assert b[("like", "a1")] == (9, ha, 2, joined, 3)
    assert b[("like", "a2")] == (9, ha, 2, joined, 3)
    assert b[("like", "b1")] == (9, hb, 1, joined, 3)
    for actor, posts in [("c1", words("c", 6) + ["xc"]), ("d1", words("c", 6) + ["xd"]),
                         ("e1", words("e", 15) + ["xe1", "xe2"]),
                         ("f1", words("e", 15) + ["xf1", "xf2"])]:
        h = set_hash(posts)
        assert b[("like", actor)] == (len(posts), h, 1, h, 1)
    # reposts: a1 and z1 are near-identical too (8/10), joined among themselves only
    assert b[("repost", "a1")] == (9, ha, 1, min(ha, hz), 2)
    assert b[("repost", "z1")] == (9, hz, 1, min(ha, hz), 2)
    # the verified pairs: exactly the two at the threshold, with their exact Jaccard
    got = sorted(pairs.select("action", "set_a", "set_b", "common", "jaccard").rows())
    assert got == sorted([("like", min(ha, hb), max(ha, hb), 8, 0.8),
                          ("repost", min(ha, hz), max(ha, hz), 8, 0.8)])


def test_near_bins_respect_min_set_size(con):
    # 9 shared of 10: Jaccard 0.9, but the smaller set has 9 posts
    sets = {("like", "i1"): words("i", 10), ("like", "j1"): words("i", 9)}
    hi, hj = set_hash(words("i", 10)), set_hash(words("i", 9))
    bins, pairs = bins_of(con, acts_frame(sets), BinConfig(min_set_size=10))
    assert pairs.height == 0
    assert as_dict(bins) == {("like", "i1"): (10, hi, 1, hi, 1),
                             ("like", "j1"): (9, hj, 1, hj, 1)}
    bins, pairs = bins_of(con, acts_frame(sets), BinConfig(min_set_size=9))
    assert pairs.select("common", "jaccard").rows() == [(9, 0.9)]
    assert as_dict(bins) == {("like", "i1"): (10, hi, 1, min(hi, hj), 2),
                             ("like", "j1"): (9, hj, 1, min(hi, hj), 2)}
    # and the 9-of-10 pair of 9-post sets from NEAR is not joined with min_set_size=10
    bins, pairs = bins_of(con, acts_frame({k: v for k, v in NEAR.items() if k[0] == "like"}),
                          BinConfig(min_set_size=10))
    assert pairs.height == 0
    assert (bins["near_bin_id"] == bins["bin_id"]).all()
    # identical-but-one tiny sets (2 of 3 posts, Jaccard 2/3) with a low threshold: still
    # never compared below the default min_set_size of 3
    tiny = {("like", "t1"): ["q1", "q2"], ("like", "t2"): ["q1", "q2", "q3"],
            ("like", "t3"): ["q1", "q3"]}
    bins, pairs = bins_of(con, acts_frame(tiny), BinConfig(jaccard_threshold=0.5))
    assert pairs.height == 0 and bins["near_bin_size"].to_list() == [1, 1, 1]


def test_near_bins_chain_into_one_component(con):
    c8 = words("c", 8)
    set_a, set_b = c8 + ["a"], c8 + ["b"]        # A~B: 8/10
    set_c = c8[:7] + ["b", "c"]                  # B~C: 8/10; A~C: 7/11 < 0.8
    sets = {("like", "a1"): set_a, ("like", "a2"): set_a,
            ("like", "b1"): set_b,
            ("like", "c1"): set_c, ("like", "c2"): set_c, ("like", "c3"): set_c,
            ("like", "lone"): words("l", 9)}
    ha, hb, hc = set_hash(set_a), set_hash(set_b), set_hash(set_c)
    bins, pairs = bins_of(con, acts_frame(sets))
    # only A-B and B-C are verified pairs; A-C is not, yet all three are one near bin
    assert sorted(pairs.select("set_a", "set_b", "common").rows()) == sorted(
        [(min(ha, hb), max(ha, hb), 8), (min(hb, hc), max(hb, hc), 8)])
    near = min(ha, hb, hc)
    hl = set_hash(words("l", 9))
    assert as_dict(bins) == {
        ("like", "a1"): (9, ha, 2, near, 6), ("like", "a2"): (9, ha, 2, near, 6),
        ("like", "b1"): (9, hb, 1, near, 6),
        ("like", "c1"): (9, hc, 3, near, 6), ("like", "c2"): (9, hc, 3, near, 6),
        ("like", "c3"): (9, hc, 3, near, 6),
        ("like", "lone"): (9, hl, 1, hl, 1),
    }


# ---------------------------------------------------------------------- 3. co-action edges

EDGE_CONFIG = CoActionConfig(windows={"co_repost": 60, "co_post": 180})


def actions_frame(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame([(k, a, t, at(s)) for k, a, t, s in rows],
                        schema={"kind": pl.String, "actor": pl.String, "target": pl.String,
                                "acted_at": pl.Datetime("us")}, orient="row")


def edges_of(con, actions: pl.DataFrame, config: CoActionConfig = EDGE_CONFIG) -> pl.DataFrame:
    con.register("actions", actions)
    try:
        return con.sql(co_action_edges_sql("actions", config)).pl().sort(
            "kind", "actor_a", "actor_b")
    finally:
        con.unregister("actions")


def edge_rows(edges: pl.DataFrame) -> dict[tuple[str, str, str], tuple]:
    return {(r["kind"], r["actor_a"], r["actor_b"]):
            (r["weight"], r["co_actions"], r["first_at"], r["last_at"], r["mean_gap_s"],
             r["example_target"]) for r in edges.iter_rows(named=True)}


def test_co_action_window_is_inclusive(con):
    edges = edges_of(con, actions_frame([
        # exactly 60 s; the smaller id acts last, so first_at is y's time, not x's
        ("co_repost", "u2", "incl", 0), ("co_repost", "u1", "incl", 60),
        ("co_repost", "u3", "far", 0), ("co_repost", "u4", "far", 61),     # 61 s: too far
        ("co_post", "u5", "text", 0), ("co_post", "u6", "text", 180),      # co_post: 180 s
        ("co_post", "u7", "text2", 0), ("co_post", "u8", "text2", 181),
    ]))
    assert edge_rows(edges) == {
        ("co_post", "u5", "u6"): (1, 1, at(0), at(180), 180.0, "text"),
        ("co_repost", "u1", "u2"): (1, 1, at(0), at(60), 60.0, "incl"),
    }


def test_co_action_pairs_counted_once_across_and_within_buckets(con):
    edges = edges_of(con, actions_frame([
        # straddling the bucket boundary at 60 (59 and 61): the later one is the smaller id
        ("co_repost", "b", "t_straddle", 59), ("co_repost", "a", "t_straddle", 61),
        # inside one bucket
        ("co_repost", "a", "t_same", 10), ("co_repost", "b", "t_same", 20),
        # three actors in one bucket: three pairs, each once
        ("co_repost", "p", "t_three", 120), ("co_repost", "q", "t_three", 121),
        ("co_repost", "r", "t_three", 122),
    ]))
    assert edge_rows(edges) == {
        # weight counts distinct targets (2), not orientations (4) nor buckets
        ("co_repost", "a", "b"): (2, 2, at(10), at(61), (2 + 10) / 2, "t_same"),
        ("co_repost", "p", "q"): (1, 1, at(120), at(121), 1.0, "t_three"),
        ("co_repost", "p", "r"): (1, 1, at(120), at(122), 2.0, "t_three"),
        ("co_repost", "q", "r"): (1, 1, at(121), at(122), 1.0, "t_three"),
    }


def test_co_action_never_self_pairs_and_counts_action_pairs(con):
    edges = edges_of(con, actions_frame([
        ("co_repost", "solo", "t1", 0), ("co_repost", "solo", "t1", 5),    # alone: no edge
        ("co_repost", "u8", "t2", 0), ("co_repost", "u8", "t2", 5),        # twice...
        ("co_repost", "u9", "t2", 3),                                      # ...with u9 once
        ("co_repost", "u8", "t2", 100),                                    # out of window
    ]))
    # u8 twice within 60 s of u9: one target (weight 1), two action pairs, closest gap 2 s
    assert edge_rows(edges) == {("co_repost", "u8", "u9"): (1, 2, at(0), at(5), 2.0, "t2")}
    assert (edges["actor_a"] < edges["actor_b"]).all()


def test_co_action_needs_same_kind_and_same_target(con):
    edges = edges_of(con, actions_frame([
        ("co_repost", "u10", "x1", 0), ("co_repost", "u11", "x2", 0),      # other targets
        ("co_repost", "u12", "same", 0), ("co_post", "u13", "same", 0),    # other kinds
        ("co_link", "u14", "link", 0), ("co_link", "u15", "link", 0),      # kind not configured
    ]))
    assert edges.height == 0


def test_co_action_weight_and_times_over_many_targets(con):
    rows = []
    for i, target in enumerate(["t_a", "t_b", "t_c"]):
        rows += [("co_repost", "m", target, 1000 * i), ("co_repost", "n", target, 1000 * i + 7)]
    rows += [("co_repost", "m", "t_d", 5000), ("co_repost", "n", "t_d", 5061)]  # 61 s: no
    edges = edges_of(con, actions_frame(rows))
    assert edge_rows(edges) == {("co_repost", "m", "n"): (3, 3, at(0), at(2007), 7.0, "t_a")}
    con.register("actions", actions_frame(rows))
    con.execute(f"CREATE TEMP TABLE e AS {co_action_edges_sql('actions', EDGE_CONFIG)}")
    assert con.sql(weight_totals_sql("e")).fetchall() == [("co_repost", 1, 3.0)]
    assert sorted(con.sql(action_counts_sql("actions")).fetchall()) == [
        ("co_repost", "m", 4), ("co_repost", "n", 4)]


def busy_actions() -> pl.DataFrame:
    """Twelve actors on five targets at staggered times: many pairs, in and out of windows."""
    rows = [("co_repost" if i % 3 else "co_post", f"u{i % 12:02d}", f"t{i % 5}", 17 * i % 400)
            for i in range(120)]
    return actions_frame(rows)


def test_co_action_chunks_partition_the_edges(con):
    """chunk = (i, n) slices pairs by their first account: the slices are disjoint and their
    union is the unsliced edge list, row for row."""
    con.register("actions", busy_actions())
    whole = con.sql(co_action_edges_sql("actions", EDGE_CONFIG)).pl().sort(
        "kind", "actor_a", "actor_b")
    assert whole.height > 20 and (whole["actor_a"] < whole["actor_b"]).all()
    for n in (2, 3, 7):
        parts = [con.sql(co_action_edges_sql("actions", EDGE_CONFIG, (i, n))).pl()
                 for i in range(n)]
        assert sum(part.height for part in parts) == whole.height
        for part in parts:   # each first account lives in one slice only
            assert part["actor_a"].n_unique() == 0 or sum(
                other["actor_a"].is_in(part["actor_a"].implode()).any() for other in parts) == 1
        assert pl.concat(parts).sort("kind", "actor_a", "actor_b").equals(whole)


def test_scored_network_is_the_same_in_slices(con):
    con.register("actions", busy_actions())
    one = scored_network(con, "actions", EDGE_CONFIG, keep_min_weight=1)
    many = scored_network(con, "actions", EDGE_CONFIG, keep_min_weight=1, actions_per_chunk=7)
    order = ["kind", "actor_a", "actor_b"]
    assert many.edges.sort(order).equals(one.edges.sort(order))
    assert many.totals.sort("kind").equals(one.totals.sort("kind"))
    assert one.totals["edges"].sum() == one.edges.height


# ------------------------------------------------------------------ 4. actions from posts

def posts_frame(rows: list[dict]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows, schema_overrides={"created_at": pl.Datetime("us")}),
                   POST_COLUMNS)


def post(post_id: str, author: str, kind: str, seconds: float, text: str, **extra) -> dict:
    return {"post_id": post_id, "author_id": author, "kind": kind, "created_at": at(seconds),
            "text": text, **extra}


POSTS = [
    post("p1", "u1", "repost", 0, "RT @x: Hello world vote now https://example.com/rt",
         reposted_id="r1"),
    post("p1b", "u7", "repost", 0, "RT without a known original", reposted_id=None),
    post("p2", "u2", "reply", 1, "Thanks!", parent_id="q1"),
    post("p3", "u3", "post", 2, "Check this out https://example.com/a), and http://foo.org/b. "
         "https://example.com/a"),                   # normalized: "check this out and" (17)
    post("p4", "u4", "post", 3, "Hello World!!! Vote NOW @someone 2024"),
    post("p5", "u5", "quote", 4, "hello, world... vote now!"),
    post("p6", "u6", "post", 5, "Hello world vote no"),  # 19 characters normalized
    post("p7", "u2", "reply", 6, "@u1 totally agree with everything here", parent_id="q2"),
]
ENGAGEMENTS = pl.DataFrame([
    ("twitter", "r1", "repost", "u1", at(0)),       # the stream repost p1 again: not doubled
    ("twitter", "r1", "repost", "u9", at(30)),      # a repost seen only in a scrape
    ("twitter", "r1", "like", "u10", at(0)),        # likes never
    ("twitter", "r2", "repost", "u11", None),       # no time: unusable
], schema={"platform": pl.String, "post_id": pl.String, "action": pl.String,
           "actor": pl.String, "engaged_at": pl.Datetime("us")}, orient="row")


def actions_of(con, config: CoActionConfig, engagements: pl.DataFrame | None = None):
    con.register("posts", posts_frame(POSTS))
    if engagements is not None:
        con.register("eng", engagements)
    sql = actions_sql("posts", "eng" if engagements is not None else None, config)
    return sorted(con.sql(sql).fetchall(), key=lambda r: (r[0], r[1], r[2], r[3]))


def test_actions_from_posts(con):
    got = actions_of(con, CoActionConfig())
    assert got == sorted([
        ("co_link", "u3", "http://foo.org/b", at(2)),
        ("co_link", "u3", "https://example.com/a", at(2)),        # twice in p3, counted once
        ("co_post", "u2", md5("totally agree with everything here"), at(6)),
        ("co_post", "u4", md5("hello world vote now"), at(3)),
        ("co_post", "u5", md5("hello world vote now"), at(4)),
        ("co_reply", "u2", "q1", at(1)),
        ("co_reply", "u2", "q2", at(6)),
        ("co_repost", "u1", "r1", at(0)),
    ])


def test_actions_with_engagements(con):
    got = actions_of(con, CoActionConfig(), ENGAGEMENTS)
    reposts = [r for r in got if r[0] == "co_repost"]
    assert reposts == [("co_repost", "u1", "r1", at(0)), ("co_repost", "u9", "r1", at(30))]
    assert not [r for r in got if r[1] in ("u10", "u11")]
    assert len(got) == 9


def test_actions_only_for_configured_kinds(con):
    got = actions_of(con, CoActionConfig(windows={"co_reply": 60}), ENGAGEMENTS)
    assert got == [("co_reply", "u2", "q1", at(1)), ("co_reply", "u2", "q2", at(6))]
    assert actions_of(con, CoActionConfig(windows={}), ENGAGEMENTS) == []
    # min_text_chars: at 19, p6's "hello world vote no" joins co_post
    got = actions_of(con, CoActionConfig(windows={"co_post": 180}, min_text_chars=19))
    assert ("co_post", "u6", md5("hello world vote no"), at(5)) in got and len(got) == 4


def test_actions_feed_edges(con):
    """posts -> actions -> edges: u4 and u5 posted the same normalized text 1 s apart, u1 and
    u9 reposted r1 30 s apart."""
    con.register("posts", posts_frame(POSTS))
    con.register("eng", ENGAGEMENTS)
    con.execute(f"CREATE TEMP TABLE acts AS {actions_sql('posts', 'eng', CoActionConfig())}")
    edges = con.sql(co_action_edges_sql("acts", CoActionConfig())).pl()
    assert sorted(edges.select("kind", "actor_a", "actor_b", "weight").rows()) == [
        ("co_post", "u4", "u5", 1), ("co_repost", "u1", "u9", 1)]


SIMILAR = CoActionConfig(similar_threshold=0.7, similar_num_perm=64, similar_bands=64)
"""One row per band: a pair at Jaccard 0.7 is a candidate with probability 1 - 0.3^64."""

SHARED = "alpha bravo charlie delta echo foxtrot golf"           # 7 tokens
SIMILAR_POSTS = [
    # 7 shared of a 10-token union: Jaccard exactly 0.7, exactly 180 s apart -> similar
    post("g1a", "A", "post", 0, SHARED + " hotel"),
    post("g1b", "B", "reply", 180, SHARED.upper() + ", india! juliet 42", parent_id="x"),
    # the same author twice: never
    post("g2a", "C", "post", 0, "kilo lima mike november oscar papa"),
    post("g2b", "C", "post", 10, "kilo lima mike november oscar papa"),
    # identical, but 181 s apart: never
    post("g3a", "D", "post", 0, "quebec romeo sierra tango uniform victor"),
    post("g3b", "E", "post", 181, "quebec romeo sierra tango uniform victor"),
    # a repost of g3a's text at the same time, by another author: reposts never
    post("g3c", "F", "repost", 0, "quebec romeo sierra tango uniform victor", reposted_id="g3a"),
    # 7 shared of 11: 0.636 < 0.7: never
    post("g4a", "G", "post", 0, "whiskey xray yankee zulu amber blue coral dune"),
    post("g4b", "H", "post", 0, "whiskey xray yankee zulu amber blue coral ember fjord glacier"),
    # identical but short after normalization ("hi there friend", 15 chars): never
    post("g5a", "I", "post", 0, "Hi there, friend!!"),
    post("g5b", "J", "post", 0, "hi there friend"),
]


def test_similar_actions(con):
    con.register("posts", posts_frame(SIMILAR_POSTS))
    got = sorted(con.sql(similar_actions_sql("posts", SIMILAR)).fetchall())
    assert got == [("co_similar", "A", "g1a", at(0)), ("co_similar", "B", "g1a", at(180))]
    # a stricter threshold drops the 0.7 pair
    stricter = CoActionConfig(similar_threshold=0.71, similar_num_perm=64, similar_bands=64)
    assert con.sql(similar_actions_sql("posts", stricter)).fetchall() == []
    # a wider window admits the 181 s pair (D, E); the repost F still never joins
    wider = CoActionConfig(windows={"co_similar": 181}, similar_num_perm=64, similar_bands=64)
    got = sorted(con.sql(similar_actions_sql("posts", wider)).fetchall())
    assert got == [("co_similar", "A", "g1a", at(0)), ("co_similar", "B", "g1a", at(180)),
                   ("co_similar", "D", "g3a", at(0)), ("co_similar", "E", "g3a", at(181))]
    # through the edge join: one co_similar edge A-B
    con.execute(f"CREATE TEMP TABLE sim AS {similar_actions_sql('posts', SIMILAR)}")
    edges = con.sql(co_action_edges_sql("sim", SIMILAR)).pl()
    assert edges.select("kind", "actor_a", "actor_b", "weight", "co_actions").rows() == [
        ("co_similar", "A", "B", 1, 1)]


# ------------------------------------------------------------------------- 5. null model

COUNTS = pl.DataFrame(
    [("co_repost", a, n) for a, n in [("a", 3), ("b", 3), ("c", 100), ("d", 100),
                                      ("e", 10), ("f", 10)]],
    schema={"kind": pl.String, "actor": pl.String, "actions": pl.Int64}, orient="row")
EDGES = pl.DataFrame(
    [("co_repost", "a", "b", 3), ("co_repost", "c", "d", 3), ("co_repost", "e", "f", 4),
     ("co_repost", "a", "e", 2)],
    schema={"kind": pl.String, "actor_a": pl.String, "actor_b": pl.String,
            "weight": pl.Int64}, orient="row")
N = dict(COUNTS.select("actor", "actions").rows())
S = 226                                   # 3 + 3 + 100 + 100 + 10 + 10
S2 = 9 + 9 + 10_000 + 10_000 + 100 + 100  # 20218
PAIR_EXPOSURE = (S * S - S2) / 2          # 15429 = sum over pairs of n_a * n_b
M = 6 * 5 / 2                             # 15 testable pairs
assert PAIR_EXPOSURE == sum(N[x] * N[y] for x in N for y in N if x < y) == 15429


def scored_dict(scored: pl.DataFrame) -> dict:
    return {(r["kind"], r["actor_a"], r["actor_b"]): r for r in scored.iter_rows(named=True)}


def test_null_model_expectation_and_p_values():
    scored = score_edges(EDGES, COUNTS)
    q = 12 / PAIR_EXPOSURE                 # total weight 3 + 3 + 4 + 2
    got = scored_dict(scored)
    assert len(got) == 4
    for (kind, x, y), row in got.items():
        assert (row["n_a"], row["n_b"]) == (N[x], N[y])
        assert row["expected"] == pytest.approx(q * N[x] * N[y], rel=1e-12)
        assert row["p_value"] == pytest.approx(poisson.sf(row["weight"] - 1, row["expected"]),
                                               rel=1e-12)
    # an independent check of one p-value: P(Poisson(l) >= 3) = 1 - e^-l (1 + l + l^2/2)
    lam = q * 9
    assert got[("co_repost", "a", "b")]["p_value"] == pytest.approx(
        1 - math.exp(-lam) * (1 + lam + lam * lam / 2), rel=1e-6)
    # the point of the null model: same weight 3, opposite verdicts by activity
    assert got[("co_repost", "a", "b")]["significant"] is True     # p ~ 5.7e-8
    assert got[("co_repost", "c", "d")]["significant"] is False    # expected ~ 7.8, p ~ 0.98
    assert got[("co_repost", "e", "f")]["significant"] is True
    # (a, e): p ~ 2.7e-4 is below alpha / M = 6.7e-4, but weight 2 < min_weight 3
    assert got[("co_repost", "a", "e")]["p_value"] < 0.01 / M
    assert got[("co_repost", "a", "e")]["significant"] is False
    lowered = scored_dict(score_edges(EDGES, COUNTS, config=NullModelConfig(min_weight=2)))
    assert lowered[("co_repost", "a", "e")]["significant"] is True
    assert lowered[("co_repost", "c", "d")]["significant"] is False
    assert scored.columns == ["kind", "actor_a", "actor_b", "weight", "n_a", "n_b", "expected",
                              "p_value", "significant"]


def test_null_model_bonferroni_uses_all_account_pairs():
    """significant iff p <= alpha / (A (A - 1) / 2): alpha set just above and just below
    p * 15 flips the verdict of (e, f) (and not with M = 30 or 36)."""
    p = scored_dict(score_edges(EDGES, COUNTS))[("co_repost", "e", "f")]["p_value"]
    above = scored_dict(score_edges(EDGES, COUNTS, config=NullModelConfig(alpha=p * M * 1.001)))
    below = scored_dict(score_edges(EDGES, COUNTS, config=NullModelConfig(alpha=p * M * 0.999)))
    assert above[("co_repost", "e", "f")]["significant"] is True
    assert below[("co_repost", "e", "f")]["significant"] is False


def test_null_model_totals_override_edge_sum():
    """Only the heavy edges are passed, with the totals of all of them (as scored_network
    does): q uses the given total, not the sum over the edges passed."""
    totals = pl.DataFrame({"kind": ["co_repost"], "total_weight": [1000.0]})
    heavy = EDGES.filter(pl.col("weight") >= 3)
    got = scored_dict(score_edges(heavy, COUNTS, totals))
    q = 1000 / PAIR_EXPOSURE
    assert set(got) == {("co_repost", "a", "b"), ("co_repost", "c", "d"), ("co_repost", "e", "f")}
    for (_, x, y), row in got.items():
        assert row["expected"] == pytest.approx(q * N[x] * N[y], rel=1e-12)
    # (a, b) now expects 0.58 co-actions: weight 3 is no longer remarkable
    assert [row["significant"] for row in got.values()] == [False, False, False]
    default = scored_dict(score_edges(heavy, COUNTS))
    assert default[("co_repost", "a", "b")]["expected"] == pytest.approx(10 / PAIR_EXPOSURE * 9)


def test_null_model_scores_kinds_independently():
    other_counts = pl.DataFrame(
        [("co_post", a, n) for a, n in [("a", 50), ("b", 50), ("c", 1), ("d", 1)]],
        schema=COUNTS.schema, orient="row")
    other_edges = pl.DataFrame([("co_post", "a", "b", 3), ("co_post", "c", "d", 3)],
                               schema=EDGES.schema, orient="row")
    both = scored_dict(score_edges(pl.concat([EDGES, other_edges]),
                                   pl.concat([COUNTS, other_counts])))
    alone = {**scored_dict(score_edges(EDGES, COUNTS)),
             **scored_dict(score_edges(other_edges, other_counts))}
    assert both == alone
    # co_post: q = 6 / (2500 + 50 + 50 + 50 + 50 + 1) = 6 / 2701; M = 6
    q = 6 / 2701
    assert both[("co_post", "a", "b")]["expected"] == pytest.approx(q * 2500, rel=1e-12)
    assert both[("co_post", "c", "d")]["expected"] == pytest.approx(q, rel=1e-12)
    assert both[("co_post", "a", "b")]["significant"] is False
    assert both[("co_post", "c", "d")]["significant"] is True   # p ~ 1.8e-9 <= 0.01 / 6


def test_scored_network_without_actions(con):
    con.register("actions", actions_frame([]))
    net = scored_network(con, "actions", EDGE_CONFIG)
    assert net.edges.height == 0 and net.totals.height == 0 and net.counts.height == 0
    assert "significant" in net.edges.columns


def test_null_model_empty_edges():
    scored = score_edges(EDGES.clear(), COUNTS)
    assert scored.height == 0 and "significant" in scored.columns


def test_scored_network_end_to_end(con):
    """Weight-1 edges are dropped from the result but still count in the totals."""
    rows = []
    for i in range(3):   # x and y co-repost three targets
        rows += [("co_repost", "x", f"t{i}", 1000 * i), ("co_repost", "y", f"t{i}", 1000 * i + 1)]
    rows += [("co_repost", "x", "t9", 9000), ("co_repost", "z", "t9", 9001)]   # weight 1
    con.register("actions", actions_frame(rows))
    net = scored_network(con, "actions", EDGE_CONFIG, keep_min_weight=2)
    assert net.totals.rows() == [("co_repost", 2, 4.0)]
    assert sorted(net.counts.rows()) == [("co_repost", "x", 4), ("co_repost", "y", 3),
                                         ("co_repost", "z", 1)]
    (row,) = net.edges.iter_rows(named=True)
    assert (row["actor_a"], row["actor_b"], row["weight"]) == ("x", "y", 3)
    # q = 4 / (x*y + x*z + y*z) = 4 / (12 + 4 + 3)
    assert row["expected"] == pytest.approx(4 / 19 * 12, rel=1e-12)
    assert row["p_value"] == pytest.approx(poisson.sf(2, 4 / 19 * 12), rel=1e-12)
    assert row["significant"] is False     # p ~ 0.46
    assert "_edges" not in {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()")
                            .fetchall()}


# ----------------------------------------------------------------------------- 6. groups

def sig_edges(rows: list[tuple[str, str, str, int, bool]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"kind": pl.String, "actor_a": pl.String,
                                      "actor_b": pl.String, "weight": pl.Int64,
                                      "significant": pl.Boolean}, orient="row")


GROUP_EDGES = sig_edges([
    ("co_repost", "b", "c", 4, True), ("co_repost", "a", "b", 5, True),
    ("co_post", "a", "c", 3, True),
    ("co_repost", "c", "d", 10, False),          # not significant: d stays out
    ("co_repost", "x", "y", 7, True),            # a pair only
    ("co_link", "f", "g", 3, True), ("co_link", "e", "f", 4, True),
    ("co_post", "g", "h", 6, True), ("co_repost", "h", "i", 2, False),
])


def test_coordinated_groups():
    groups = coordinated_groups(GROUP_EDGES)
    assert groups.columns == ["group_id", "actor", "group_size", "kinds", "edges", "max_weight"]
    assert groups.rows() == [
        ("a", "a", 3, ["co_post", "co_repost"], 2, 5),
        ("a", "b", 3, ["co_repost"], 2, 5),
        ("a", "c", 3, ["co_post", "co_repost"], 2, 4),
        ("e", "e", 4, ["co_link"], 1, 4),
        ("e", "f", 4, ["co_link"], 2, 4),
        ("e", "g", 4, ["co_link", "co_post"], 2, 6),
        ("e", "h", 4, ["co_post"], 1, 6),
    ]
    pairs = coordinated_groups(GROUP_EDGES, min_group_size=2)
    assert pairs.filter(pl.col("group_id") == "x").rows() == [
        ("x", "x", 2, ["co_repost"], 1, 7), ("x", "y", 2, ["co_repost"], 1, 7)]
    assert pairs.height == 9
    assert coordinated_groups(GROUP_EDGES, min_group_size=4)["actor"].to_list() == [
        "e", "f", "g", "h"]


def test_coordinated_groups_without_significant_edges():
    groups = coordinated_groups(GROUP_EDGES.with_columns(pl.lit(False).alias("significant")))
    assert groups.height == 0
    assert groups.columns == ["group_id", "actor", "group_size", "kinds", "edges", "max_weight"]


def test_recovery_with_merged_groups_and_a_missed_member():
    # detected: D1 = {a, b, c, e, f} (merges planted P1 and P2), D2 = {x, y, z} (false)
    # planted:  P1 = {a, b, c, m} (m is missed), P2 = {e, f}
    groups = pl.DataFrame({"group_id": ["a"] * 5 + ["x"] * 3,
                           "actor": ["a", "b", "c", "e", "f", "x", "y", "z"]})
    truth = pl.DataFrame({"actor": ["a", "b", "c", "m", "e", "f"], "group": [1, 1, 1, 1, 2, 2]})
    got = recovery(groups, truth)
    assert got == {
        "detected_accounts": 8, "planted_accounts": 6,
        "account_precision": 5 / 8,     # a, b, c, e, f of 8 detected
        "account_recall": 5 / 6,        # all planted but m
        "detected_groups": 2, "planted_groups": 2,
        # detected pairs: C(5,2) + C(3,2) = 13; planted pairs: C(4,2) + C(2,2) = 7;
        # both: ab, ac, bc, ef = 4 (the 6 cross pairs of the merge are false, m's 3 missed)
        "pair_precision": 4 / 13,
        "pair_recall": 4 / 7,
    }


def test_recovery_from_detected_groups_and_empty_detection():
    truth = pl.DataFrame({"actor": ["a", "b", "c", "e", "f", "g", "h"],
                          "group": ["g1", "g1", "g1", "g2", "g2", "g2", "g2"]})
    perfect = recovery(coordinated_groups(GROUP_EDGES), truth)
    assert perfect == {"detected_accounts": 7, "planted_accounts": 7, "account_precision": 1.0,
                       "account_recall": 1.0, "detected_groups": 2, "planted_groups": 2,
                       "pair_precision": 1.0, "pair_recall": 1.0}
    empty = recovery(coordinated_groups(GROUP_EDGES.clear()), truth)
    assert empty == {"detected_accounts": 0, "planted_accounts": 7, "account_precision": 0.0,
                     "account_recall": 0.0, "detected_groups": 0, "planted_groups": 2,
                     "pair_precision": 0.0, "pair_recall": 0.0}


# ------------------------------------------------------------------------ 7. components

def labels_of(a: list[str], b: list[str]) -> dict[str, str]:
    out = component_labels(pl.DataFrame({"a": a, "b": b}, schema={"a": pl.String,
                                                                   "b": pl.String}))
    assert out.columns == ["node", "label"]
    assert out["node"].n_unique() == out.height
    return dict(out.rows())


def test_component_labels_empty():
    out = component_labels(pl.DataFrame(schema={"a": pl.String, "b": pl.String}))
    assert out.height == 0 and out.schema == pl.Schema({"node": pl.String, "label": pl.String})


def test_component_labels_single_edge_and_two_components():
    assert labels_of(["n2"], ["n1"]) == {"n1": "n1", "n2": "n1"}
    assert labels_of(["z", "y", "q", "p", "r"], ["y", "x", "p", "r", "r"]) == {
        "x": "x", "y": "x", "z": "x", "p": "p", "q": "p", "r": "p"}


def test_component_labels_are_stable():
    a = ["d", "c", "b", "k", "j", "m"]
    b = ["c", "b", "a", "j", "m", "m"]      # a chain a-b-c-d, and j-k-m with a self-loop
    expected = {n: "a" for n in "abcd"} | {n: "j" for n in "jkm"}
    assert labels_of(a, b) == expected
    assert labels_of(b, a) == expected
    assert labels_of(a[::-1], b[::-1]) == expected
    # many duplicates of one edge (the int8 edge weights sum past 127 and 255) still connect
    assert labels_of(["x"] * 300 + ["p"], ["y"] * 300 + ["q"]) == {
        "x": "x", "y": "x", "p": "p", "q": "p"}
