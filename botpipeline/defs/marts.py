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
}


def mart_views() -> list[tuple[str, str]]:
    return list(MART_VIEWS.items())
