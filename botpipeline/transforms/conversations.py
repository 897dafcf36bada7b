"""Conversation reconstruction in DuckDB SQL: parents, roots, depths, threads.

Input is a relation of posts (the current partition plus a look-back window of earlier ones,
plus any hydrated parents) with ``post_id``, ``parent_id``, ``author_id``, ``created_at``,
``conversation_id``, ``source_step`` (simulation step or null) and ``is_current``. Roots and depths come from pointer jumping: every
reply starts pointing at its parent and each round replaces the pointer by the pointer's
pointer, so a chain of depth d resolves in about log2(d) rounds of one hash join each; nothing
walks trees in Python. Quirks are handled and counted, never fatal:

* a parent that is not in the data becomes a placeholder root (and a missing-parent row);
* a self-reply (``parent_id = post_id``) is treated as a root;
* a cycle of replies is broken at its smallest post id, which becomes the root;
* a reply older than its parent (clock skew, simulation steps) is kept and flagged;
* a source conversation id that disagrees with the reconstructed root is flagged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

# 2**48 exceeds any real chain: rows still unresolved after this many rounds are in cycles
# (whose distances are capped so they cannot overflow).
MAX_ROUNDS = 48


@dataclass
class Reconstruction:
    """Names of the temp tables written on the connection, and the quirk counts."""

    posts: str = "conv_posts"
    threads: str = "conv_threads"
    missing_parents: str = "conv_missing_parents"
    rounds: int = 0
    quirks: Counter = field(default_factory=Counter)


def reconstruct(con: duckdb.DuckDBPyConnection, nodes_sql: str) -> Reconstruction:
    """Reconstruct the conversations of the posts in ``nodes_sql``.

    Writes three temp tables on ``con``:
    ``conv_posts`` (every current post: parent, root, depth, parent status, quirk flags),
    ``conv_threads`` (every thread a current post belongs to, with stats over the window) and
    ``conv_missing_parents`` (parents referenced by current posts but absent from the data).
    """
    result = Reconstruction()
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE conv_nodes AS
        SELECT post_id, any_value(parent_id) AS raw_parent_id,
               any_value(author_id) AS author_id, min(created_at) AS created_at,
               any_value(conversation_id) AS conversation_id, bool_or(is_current) AS is_current,
               any_value(source_step) AS source_step
        FROM ({nodes_sql}) WHERE post_id IS NOT NULL GROUP BY post_id""")
    # Self-replies become roots; a parent outside the data becomes a placeholder.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE conv_edges AS
        SELECT n.post_id, n.raw_parent_id AS parent_id,
               n.raw_parent_id = n.post_id AS self_reply,
               p.post_id IS NULL AND n.raw_parent_id <> n.post_id AS parent_missing
        FROM conv_nodes n LEFT JOIN conv_nodes p ON p.post_id = n.raw_parent_id
        WHERE n.raw_parent_id IS NOT NULL""")
    cut = _resolve(con, result)
    if cut:
        result.quirks["cycles_broken"] = len(cut)
        con.execute("CREATE OR REPLACE TEMP TABLE conv_cut AS SELECT unnest(?) AS post_id",
                    [sorted(cut)])
        con.execute("DELETE FROM conv_edges WHERE post_id IN (SELECT post_id FROM conv_cut)")
        _resolve(con, result)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE conv_cut (post_id VARCHAR)")

    con.execute("""
        CREATE OR REPLACE TEMP TABLE conv_all AS
        SELECT n.post_id, n.author_id, n.created_at, n.conversation_id, n.is_current,
               n.source_step,
               n.raw_parent_id AS parent_id,
               CASE WHEN n.raw_parent_id IS NULL THEN 'none'
                    WHEN e.self_reply THEN 'self_reply'
                    WHEN c.post_id IS NOT NULL THEN 'cycle_broken'
                    WHEN e.parent_missing THEN 'placeholder'
                    ELSE 'in_data' END AS parent_status,
               CASE WHEN e.parent_missing THEN n.raw_parent_id
                    ELSE coalesce(l.anc, n.post_id) END AS root_id,
               CASE WHEN e.parent_missing THEN 1 ELSE coalesce(l.dist, 0) END AS depth
        FROM conv_nodes n
        LEFT JOIN conv_edges e USING (post_id)
        LEFT JOIN conv_cut c USING (post_id)
        LEFT JOIN conv_links l ON l.id = n.post_id""")
    # Posts below a placeholder: their resolved root is the reply whose parent is missing;
    # move them under the placeholder itself (one level deeper).
    con.execute("""
        UPDATE conv_all SET root_id = r.parent_id, depth = conv_all.depth + 1
        FROM conv_all r
        WHERE conv_all.root_id = r.post_id AND r.parent_status = 'placeholder'
          AND conv_all.post_id <> r.post_id""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE conv_posts AS
        SELECT a.post_id, a.parent_id, a.root_id, a.depth, a.parent_status,
               a.root_id NOT IN (SELECT post_id FROM conv_nodes) AS root_is_placeholder,
               -- simulation steps when both have one, else clock time
               coalesce(a.source_step < p.source_step, a.created_at < p.created_at, false)
                   AS reply_before_parent,
               a.conversation_id IS NOT NULL AND a.conversation_id <> a.root_id
                   AND a.root_id IN (SELECT post_id FROM conv_nodes)
                   AS conversation_id_mismatch
        FROM conv_all a LEFT JOIN conv_all p ON p.post_id = a.parent_id
                                           AND a.parent_status = 'in_data'
        WHERE a.is_current""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE conv_threads AS
        WITH touched AS (SELECT DISTINCT root_id FROM conv_posts)
        SELECT a.root_id,
               bool_or(a.post_id = a.root_id) = false AS root_is_placeholder,
               count(*) AS posts,
               count(*) FILTER (WHERE a.depth > 0) AS replies,
               max(a.depth) AS max_depth,
               count(DISTINCT a.author_id) AS participants,
               min(a.created_at) AS first_at, max(a.created_at) AS last_at,
               count(*) FILTER (WHERE a.is_current) AS posts_in_partition
        FROM conv_all a JOIN touched USING (root_id)
        GROUP BY a.root_id""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE conv_missing_parents AS
        SELECT a.parent_id AS missing_post_id, count(*) AS waiting_replies,
               min(a.created_at) AS first_reply_at, max(a.created_at) AS last_reply_at
        FROM conv_all a
        WHERE a.parent_status = 'placeholder' AND a.is_current
        GROUP BY a.parent_id""")
    counts = con.execute("""
        SELECT count(*) FILTER (WHERE parent_status = 'self_reply'),
               count(*) FILTER (WHERE parent_status = 'placeholder'),
               count(*) FILTER (WHERE reply_before_parent),
               count(*) FILTER (WHERE conversation_id_mismatch)
        FROM conv_posts""").fetchall()[0]
    for name, value in zip(("self_replies", "replies_to_missing_parents",
                            "replies_before_parent", "conversation_id_mismatches"), counts):
        result.quirks[name] = value
    return result


def _resolve(con: duckdb.DuckDBPyConnection, result: Reconstruction) -> set[str]:
    """Pointer jumping over conv_edges into conv_links(id, anc, dist).

    Returns the posts whose links must be cut to break cycles (empty when there are none).
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE conv_links AS
        SELECT post_id AS id, parent_id AS anc, 1::BIGINT AS dist FROM conv_edges
        WHERE NOT self_reply AND NOT parent_missing""")
    previous = None
    for _ in range(MAX_ROUNDS):
        pending = con.execute("""
            SELECT count(*) FROM conv_links l JOIN conv_links p ON p.id = l.anc""").fetchall()[0][0]
        if pending == 0:
            return set()
        # Without cycles every round resolves at least one more post (a chain holds every
        # depth below its deepest post); a round that resolves none means only cycles remain.
        if pending == previous:
            break
        previous = pending
        result.rounds += 1
        con.execute("""
            CREATE OR REPLACE TEMP TABLE conv_links AS
            SELECT l.id, coalesce(p.anc, l.anc) AS anc,
                   least(l.dist + coalesce(p.dist, 0), 1::BIGINT << 50) AS dist
            FROM conv_links l LEFT JOIN conv_links p ON p.id = l.anc""")
    return _cycle_cuts(con)


def _cycle_cuts(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The smallest post id of every cycle among the (few) unresolved edges."""
    rows = con.execute("""
        SELECT e.post_id, e.parent_id FROM conv_edges e
        WHERE e.post_id IN (SELECT l.id FROM conv_links l JOIN conv_links p ON p.id = l.anc)
          AND NOT e.self_reply AND NOT e.parent_missing""").fetchall()
    parent = dict(rows)
    cuts, done = set(), set()
    for start in sorted(parent):
        path, node = [], start
        while node in parent and node not in done and node not in path:
            path.append(node)
            node = parent[node]
        if node in path:  # found a new cycle: the part of the path from `node` on
            cuts.add(min(path[path.index(node):]))
        done.update(path)
    return cuts
