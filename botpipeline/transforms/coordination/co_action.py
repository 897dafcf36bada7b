"""Co-action networks, as the Coordination Network Toolkit computes them.

Two accounts co-act when both act on the same target within ``window`` seconds of each other:
co-repost (the same reposted post), co-reply (the same parent), co-link (the same URL),
co-post (the same normalized text) and co-similar (texts whose token sets have a Jaccard
similarity of at least a threshold, found by MinHash LSH and verified exactly). The edge
weight of a pair is the number of distinct targets they co-acted on.

Pairs are found with an equi-join on (kind, target, time bucket): each action is matched
against its own bucket and its neighbours, so a post reposted 50,000 times over a day never
forms its 50,000^2 pairs, only those inside the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botpipeline.transforms.account_features import NORMALIZED

@dataclass(frozen=True)
class CoActionConfig:
    windows: dict[str, int] = field(default_factory=lambda: {
        "co_repost": 60, "co_reply": 60, "co_link": 60, "co_post": 180, "co_similar": 180})
    """Seconds within which two actions on the same target count as a co-action, per kind;
    a kind left out is not computed."""
    min_text_chars: int = 20
    """co-post and co-similar ignore normalized texts shorter than this ("thanks", "lol")."""
    similar_threshold: float = 0.7
    similar_num_perm: int = 32
    similar_bands: int = 8


def actions_sql(posts: str, engagements: str | None, c: CoActionConfig) -> str:
    """The relation ``(kind, actor, target, acted_at)`` for every configured kind except co_similar.

    ``posts`` is a core.posts relation; ``engagements`` a raw.engagements relation whose
    reposts with a known time join the co-repost actions (likes carry no time)."""
    text = NORMALIZED.format(col="text")
    parts = {
        "co_repost": f"""SELECT 'co_repost' AS kind, author_id AS actor, reposted_id AS target,
                                created_at AS acted_at
                         FROM {posts} WHERE kind = 'repost' AND reposted_id IS NOT NULL""",
        "co_reply": f"""SELECT 'co_reply', author_id, parent_id, created_at
                        FROM {posts} WHERE kind = 'reply' AND parent_id IS NOT NULL""",
        "co_link": f"""SELECT DISTINCT 'co_link', author_id,
                              rtrim(unnest(regexp_extract_all(text, 'https?://[^\\s]+')),
                                    '.,;:!?)'), created_at
                       FROM {posts} WHERE kind <> 'repost' AND text LIKE '%http%'""",
        "co_post": f"""SELECT 'co_post', author_id, md5(norm), created_at FROM (
                           SELECT author_id, created_at, {text} AS norm
                           FROM {posts} WHERE kind <> 'repost')
                       WHERE length(norm) >= {int(c.min_text_chars)}""",
    }
    if engagements is not None:
        parts["co_repost"] += f"""
            UNION SELECT 'co_repost', actor, post_id, engaged_at FROM {engagements}
            WHERE action = 'repost' AND engaged_at IS NOT NULL"""
    chosen = [sql for kind, sql in parts.items() if kind in c.windows]
    body = "\nUNION ALL\n".join(f"({sql})" for sql in chosen) if chosen else \
        "SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::TIMESTAMP WHERE false"
    return f"SELECT * FROM ({body}) t(kind, actor, target, acted_at) " \
           "WHERE actor IS NOT NULL AND target IS NOT NULL AND acted_at IS NOT NULL"


def similar_actions_sql(posts: str, c: CoActionConfig) -> str:
    """co-similar as actions: each pair of posts whose token sets reach the Jaccard threshold
    becomes a shared target (the smaller post id), so the edge join treats it like co-post."""
    rows = c.similar_num_perm // c.similar_bands
    text = NORMALIZED.format(col="text")
    return f"""
    WITH docs AS (
        SELECT post_id, author_id, created_at, list_distinct(string_split({text}, ' ')) AS tokens
        FROM {posts} WHERE kind <> 'repost' AND length({text}) >= {int(c.min_text_chars)}),
    signature AS (
        SELECT d.post_id, p.k, min(hash(t.token, p.k)) AS h
        FROM docs d, unnest(d.tokens) t(token), range({int(c.similar_num_perm)}) p(k)
        GROUP BY ALL),
    band_keys AS (
        SELECT post_id, k // {rows} AS band, hash(list(h ORDER BY k)) AS band_key
        FROM signature GROUP BY post_id, band),
    candidates AS (
        SELECT DISTINCT a.post_id AS post_a, b.post_id AS post_b
        FROM band_keys a JOIN band_keys b USING (band, band_key) WHERE a.post_id < b.post_id),
    similar_pairs AS (
        SELECT c.post_a, c.post_b
        FROM candidates c JOIN docs x ON x.post_id = c.post_a JOIN docs y ON y.post_id = c.post_b
        WHERE x.author_id <> y.author_id
          AND abs(epoch(x.created_at) - epoch(y.created_at)) <= {int(c.windows["co_similar"])}
          AND len(list_intersect(x.tokens, y.tokens))
              / len(list_distinct(list_concat(x.tokens, y.tokens)))
              >= {float(c.similar_threshold)})
    SELECT DISTINCT 'co_similar' AS kind, d.author_id AS actor, s.post_a AS target,
           d.created_at AS acted_at
    FROM similar_pairs s JOIN docs d ON d.post_id IN (s.post_a, s.post_b)"""


def bucketed_actions_sql(actions: str, c: CoActionConfig, slices: int = 1) -> str:
    """``actions`` as the edge join wants them: integer codes for the actor (``a``) and the
    target (``tc``), dense ranks in string order (so code order is string order), the time in
    microseconds (``us``), the kind's window, the time ``bucket`` (one window wide) and the
    ``slice`` (hash of the actor modulo ``slices``), with the strings beside them for decoding.
    Materialized once, it serves every slice of co_action_codes_sql."""
    windows = " ".join(f"WHEN '{k}' THEN {int(w)}" for k, w in c.windows.items())
    # Codes from the distinct values (a sort of thousands, not of every action).
    return f"""
    WITH raw AS (SELECT kind, actor, target, epoch_us(acted_at) AS us,
                        CASE kind {windows} END AS window_s
                 FROM {actions}),
    actors AS (SELECT actor, (row_number() OVER (ORDER BY actor))::INTEGER AS a
               FROM (SELECT DISTINCT actor FROM raw)),
    targets AS (SELECT target, (row_number() OVER (ORDER BY target))::INTEGER AS tc
                FROM (SELECT DISTINCT target FROM raw))
    SELECT r.kind, r.actor, r.target, x.a, t.tc, r.us, r.window_s,
           floor(r.us / (1000000 * greatest(r.window_s, 1)))::BIGINT AS bucket,
           hash(r.actor) % {int(slices)} AS slice
    FROM raw r JOIN actors x USING (actor) JOIN targets t USING (target)
    ORDER BY t.tc, r.us"""


def co_action_codes_sql(bucketed: str, chunk: tuple[int, int] = (0, 1)) -> str:
    """co_action_edges_sql on a materialized bucketed_actions_sql, in codes: kind, a, b (actor
    codes, a < b), weight, co_actions, first_us, last_us, mean_gap_s, example (the smallest
    shared target code). Integers all through the join and both aggregations: a busy day's
    tens of millions of pairs are grouped without hashing a string."""
    index, count = chunk
    return f"""
    WITH x AS (SELECT kind, a, tc, us, window_s, bucket + d AS probe
               FROM {bucketed}, (VALUES (-1), (0), (1)) s(d)
               WHERE slice = {int(index)} % {int(count)}),
    per_target AS (
        SELECT x.kind, x.a, y.a AS b, x.tc, count(*) AS co_actions,
               min(least(x.us, y.us)) AS first_us, max(greatest(x.us, y.us)) AS last_us,
               min(abs(x.us - y.us)) AS gap_us
        FROM x JOIN {bucketed} y ON x.kind = y.kind AND x.tc = y.tc AND x.probe = y.bucket
        WHERE x.a < y.a AND abs(x.us - y.us) <= x.window_s * 1000000
        GROUP BY ALL)
    SELECT kind, a, b, count(*) AS weight, sum(co_actions) AS co_actions,
           min(first_us) AS first_us, max(last_us) AS last_us,
           avg(gap_us) / 1e6 AS mean_gap_s, min(tc) AS example
    FROM per_target GROUP BY kind, a, b"""


def decode_edges_sql(codes: str, bucketed: str) -> str:
    """Edges in codes (co_action_codes_sql) back to actor and target strings and times."""
    return f"""
    WITH actors AS (SELECT DISTINCT a, actor FROM {bucketed}),
         targets AS (SELECT DISTINCT tc, target FROM {bucketed})
    SELECT e.kind, x.actor AS actor_a, y.actor AS actor_b, e.weight, e.co_actions,
           make_timestamp(e.first_us) AS first_at, make_timestamp(e.last_us) AS last_at,
           e.mean_gap_s, t.target AS example_target
    FROM {codes} e JOIN actors x ON x.a = e.a JOIN actors y ON y.a = e.b
    JOIN targets t ON t.tc = e.example"""


def co_action_edges_sql(actions: str, c: CoActionConfig, chunk: tuple[int, int] = (0, 1),
                        bucketed: bool = False) -> str:
    """Weighted account pairs per kind: weight (distinct shared targets), co-actions, first and
    last co-action time, the mean over targets of the closest gap, and one example target.

    Each action x probes its own time bucket and the two next to it for actions y of a later
    account (x.actor < y.actor), so every unordered pair of actions is met exactly once and a
    pair's rows all carry the same orientation. ``chunk = (i, n)`` keeps the pairs whose first
    account hashes to i modulo n: a busy day is aggregated in n slices of 1/n the memory.
    ``bucketed``: ``actions`` is already bucketed_actions_sql(..., n), materialized."""
    index, count = chunk
    b = actions if bucketed else f"({bucketed_actions_sql(actions, c, count)})"
    return f"""
    WITH bucketed AS (SELECT * FROM {b}),
    codes AS ({co_action_codes_sql("bucketed", (index, count))})
    {decode_edges_sql("codes", "bucketed").replace("WITH actors", ", actors", 1)}"""


def action_counts_sql(actions: str) -> str:
    """Actions per (kind, actor): the null model's exposure."""
    return f"SELECT kind, actor, count(*) AS actions FROM {actions} GROUP BY kind, actor"


def weight_totals_sql(edges: str) -> str:
    """Per kind: all edges and the sum of their weights (the null model's coincidence mass)."""
    return (f"SELECT kind, count(*) AS edges, sum(weight)::DOUBLE AS total_weight "
            f"FROM {edges} GROUP BY kind")
