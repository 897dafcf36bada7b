"""Views analysts start from (schema ``marts``), published into the analysts' database."""

from __future__ import annotations

# name -> SELECT over the lake's views. A view whose sources have no data yet is skipped
# (and reported) until they do.
MART_VIEWS: dict[str, str] = {
    "marts.stream_daily_summary": """
        SELECT m.collection_date,
               sum(m.lines) FILTER (WHERE m.message_type = 'tweet')::BIGINT AS tweet_lines,
               sum(m.lines) FILTER (WHERE m.message_type = 'delete')::BIGINT AS delete_notices,
               coalesce(sum(m.lines) FILTER (WHERE m.message_type NOT IN
                   ('tweet', 'delete', 'quarantined')), 0)::BIGINT AS other_notices,
               sum(m.lines) FILTER (WHERE m.message_type = 'quarantined')::BIGINT
                   AS quarantined_lines,
               (SELECT count(*) FROM raw.tweets t WHERE t.collection_date = m.collection_date)
                   AS unique_tweets
        FROM raw.stream_message_counts m
        GROUP BY m.collection_date""",
    # Threads touched on each date (or simulation run) with their root post.
    "marts.conversations": """
        WITH roots AS (
            SELECT post_id, any_value(platform) AS platform, any_value(text) AS root_text,
                   any_value(author_username) AS root_author,
                   any_value(created_at) AS root_created_at
            FROM core.posts GROUP BY post_id)
        SELECT t.collection_date, NULL::VARCHAR AS run_id, r.platform, t.root_id,
               t.root_is_placeholder, r.root_author, r.root_created_at, r.root_text,
               t.posts, t.replies, t.max_depth, t.participants, t.first_at, t.last_at,
               t.posts_in_partition
        FROM conversations.threads t LEFT JOIN roots r ON r.post_id = t.root_id""",
    "marts.simulated_conversations": """
        SELECT t.run_id, p.platform, t.root_id, t.root_is_placeholder,
               p.author_username AS root_author, p.created_at AS root_created_at,
               p.source_step AS root_step, p.text AS root_text, t.posts, t.replies,
               t.max_depth, t.participants, t.first_at, t.last_at
        FROM conversations.simulated_threads t
        LEFT JOIN core.simulated_posts p ON p.run_id = t.run_id AND p.post_id = t.root_id""",
    # How much of each date's reply graph hangs on parents that are not in the data.
    "marts.missing_parent_share": """
        SELECT collection_date,
               count(*) FILTER (WHERE parent_id IS NOT NULL) AS replies,
               count(*) FILTER (WHERE parent_status = 'placeholder')
                   AS replies_to_missing_parents,
               round(count(*) FILTER (WHERE parent_status = 'placeholder')
                     / nullif(count(*) FILTER (WHERE parent_id IS NOT NULL), 0), 4)
                   AS missing_parent_share
        FROM conversations.posts GROUP BY collection_date""",
    # The seed 003 endpoints, as views. Flagged by any verdict (the 13-signal score, the rule
    # filter, the learned model), with which one flagged.
    "marts.flagged_accounts": """
        SELECT b.collection_date, b.platform, b.account_id, b.username, b.total_score,
               b.flagged AS flagged_by_score, r.is_likely_bot AS flagged_by_rules,
               coalesce(p.flagged, false) AS flagged_by_model, p.bot_probability,
               p.model_version, b.significant_signals, r.reasons AS rule_reasons,
               f.account_age_days, f.followers_count, f.following_count, f.posts_24h,
               f.comments
        FROM scores.bot_scores b
        JOIN scores.rule_filter r USING (collection_date, platform, account_id)
        JOIN features.account_features f USING (collection_date, platform, account_id)
        LEFT JOIN scores.bot_probability p USING (collection_date, platform, account_id)
        WHERE b.flagged OR r.is_likely_bot OR p.flagged""",
    "marts.account_comments": """
        SELECT p.collection_date, p.platform, p.author_id AS account_id, p.author_username,
               p.post_id, p.parent_id, p.created_at, p.text, t.severity, t.is_inflammatory,
               t.triggered_categories
        FROM core.posts p
        LEFT JOIN scores.toxicity t USING (collection_date, platform, post_id)
        WHERE p.kind = 'reply'""",
    "marts.inflammatory_comments": """
        SELECT t.collection_date, t.platform, t.post_id, p.author_id AS account_id,
               p.author_username, p.parent_id, p.created_at, p.text, t.severity,
               t.triggered_categories, t.model
        FROM scores.toxicity t JOIN core.posts p USING (collection_date, platform, post_id)
        WHERE t.is_inflammatory""",
    "marts.stats_overview": """
        SELECT b.collection_date, count(*) AS accounts_scored,
               count(*) FILTER (WHERE b.flagged) AS flagged_by_score,
               count(*) FILTER (WHERE r.is_likely_bot) AS flagged_by_rules,
               round(avg(b.total_score), 3) AS mean_score,
               any_value(p.posts) AS posts, any_value(p.comments) AS comments,
               any_value(t.inflammatory) AS inflammatory_comments
        FROM scores.bot_scores b
        JOIN scores.rule_filter r USING (collection_date, platform, account_id)
        LEFT JOIN (SELECT collection_date, count(*) AS posts,
                          count(*) FILTER (WHERE kind = 'reply') AS comments
                   FROM core.posts GROUP BY ALL) p USING (collection_date)
        LEFT JOIN (SELECT collection_date, count(*) FILTER (WHERE is_inflammatory)
                          AS inflammatory FROM scores.toxicity GROUP BY ALL) t
          USING (collection_date)
        GROUP BY b.collection_date""",
    # Coordinated groups with their members, the evidence of their significant edges and
    # the members' mean bot score.
    "marts.coordinated_groups": """
        WITH members AS (
            SELECT g.collection_date, g.group_id, any_value(g.group_size) AS group_size,
                   list(coalesce(f.username, g.actor) ORDER BY g.actor) AS members,
                   round(avg(b.total_score), 2) AS mean_bot_score,
                   count(*) FILTER (WHERE b.flagged) AS members_flagged
            FROM coordination.groups g
            LEFT JOIN features.account_features f
              ON f.collection_date = g.collection_date AND f.account_id = g.actor
            LEFT JOIN scores.bot_scores b
              ON b.collection_date = g.collection_date AND b.account_id = g.actor
            GROUP BY ALL),
        evidence AS (
            SELECT collection_date, group_id, list(kind ORDER BY kind) AS kinds,
                   sum(edges) AS significant_edges, sum(total_weight) AS total_weight,
                   min(first_at) AS first_co_action, max(last_at) AS last_co_action,
                   round(avg(mean_gap_s), 1) AS mean_gap_seconds
            FROM coordination.group_evidence GROUP BY ALL)
        SELECT * FROM members JOIN evidence USING (collection_date, group_id)
        ORDER BY collection_date, group_size DESC""",
    # What a group reposted together: posts reposted by at least two members in the
    # co-action window (the partition and the two dates before it), with the timing.
    "marts.coordinated_group_reposts": """
        SELECT g.collection_date, g.group_id, p.reposted_id AS post_id,
               count(DISTINCT p.author_id) AS members_reposting,
               any_value(g.group_size) AS group_size,
               min(p.created_at) AS first_repost, max(p.created_at) AS last_repost,
               date_diff('second', min(p.created_at), max(p.created_at)) AS spread_seconds
        FROM coordination.groups g
        JOIN core.posts p ON p.author_id = g.actor AND p.kind = 'repost'
         AND p.collection_date BETWEEN g.collection_date - INTERVAL 2 DAY AND g.collection_date
        GROUP BY ALL HAVING count(DISTINCT p.author_id) >= 2
        ORDER BY g.collection_date, g.group_id, members_reposting DESC""",
    # The largest identical / near-identical behaviour bins (sets of at least 3 posts).
    "marts.largest_bins": """
        SELECT collection_date, action, near_bin_id, count(*) AS accounts,
               count(DISTINCT bin_id) AS exact_bins, max(bin_size) AS largest_exact_bin,
               min(set_size) AS min_set_size, max(set_size) AS max_set_size,
               list(actor ORDER BY actor)[1:20] AS sample_accounts
        FROM coordination.behaviour_bins WHERE set_size >= 3
        GROUP BY ALL HAVING count(*) >= 2
        ORDER BY collection_date, action, accounts DESC""",
}


# Tables a mart reads that only exist once an optional job ran (the learned model is trained
# on request): until then an empty view stands in, so the mart is published anyway.
OPTIONAL_TABLES: dict[str, str] = {
    "scores.bot_probability": """
        SELECT NULL::DATE AS collection_date, NULL::VARCHAR AS platform,
               NULL::VARCHAR AS account_id, NULL::VARCHAR AS username,
               NULL::DOUBLE AS bot_probability, NULL::BOOLEAN AS flagged,
               NULL::DOUBLE AS threshold, NULL::VARCHAR AS model_version,
               NULL::VARCHAR AS trained_on
        WHERE false""",
}


def mart_views(lake_tables: set[str] = frozenset()) -> list[tuple[str, str]]:
    """The marts, after empty stand-ins for the optional tables the lake lacks."""
    return [(name, select) for name, select in OPTIONAL_TABLES.items()
            if name not in lake_tables] + list(MART_VIEWS.items())
