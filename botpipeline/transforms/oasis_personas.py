"""Which persona each user of an OASIS run is: the dataset's own ids, never a silent guess.

The dataset's per-post ``persona_id`` is the authority for a user's persona *label*. The rows
of the personas file (username, description, traits) are matched to users by what the files
actually say, strongest link first:

1. ``persona_file_user_id``: the personas file has a user id column (``user_id`` /
   ``agent_id``).
2. ``username``: the dataset's posts name their author's username (a ``username`` field, or
   a companion file of ``id, username`` lines such as OASIS's ``*_training.jsonl``).
3. ``row_order``: row *i* is user *i*, used only when it agrees with the dataset for every user
   whose posts carry a ``persona_id`` (or when the dataset carries no persona ids at all:
   then the rule is ``row_order_unverified`` and the check says so).
4. ``unique_label``: a user whose label has exactly one unmatched row and is the only
   unmatched user of that label gets that row. Where several rows share the label, the files
   cannot tell them apart: the user keeps the dataset's label, gets no row (no username, no
   description), and is counted as ``ambiguous`` instead of being given an invented row.

Users without posts (only in the follow graph or the agent range) get a row only through rules
1-3; otherwise ``no_row``. Every disagreement is counted in :class:`PersonaAssignment.report`:
users whose row-order row has another label (and their posts), matched rows whose own label
differs from the dataset's, users whose posts carry several persona ids, ambiguous users per
label, rows no user matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

USER_ID_COLUMNS = ("user_id", "agent_id")
LABEL_COLUMN = "primary_label"
RULES = ("persona_file_user_id", "username", "row_order", "row_order_unverified", "label")


@dataclass
class PersonaAssignment:
    users: pl.DataFrame
    """One row per user: user_id, persona, persona_source, persona_match, persona_row,
    row_primary_label, row_label_agrees, dataset_posts, dataset_persona_ids, then every column
    of the matched persona row (``primary_label`` = ``persona``)."""
    rule: str
    """The strongest rule that matched rows to users (see the module docstring)."""
    report: dict = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        r = self.report
        return not (r["row_order_disagreements"]["users"] or r["matched_row_label_disagreements"]
                    or r["users_with_several_persona_ids"])

    @property
    def resolved(self) -> bool:
        return not self.report["ambiguous_users"] and self.rule != "row_order_unverified"


def _is_int(col: str) -> pl.Expr:
    return pl.col(col).str.contains(r"^\d+$")


def _dataset_labels(posts: pl.DataFrame) -> pl.DataFrame:
    """user_id, dataset_label (most frequent persona_id, ties by name), dataset_posts,
    dataset_persona_ids (distinct ids seen)."""
    if "persona_id" not in posts.columns:
        posts = posts.with_columns(pl.lit(None, pl.String).alias("persona_id"))
    counts = (posts.group_by("user_id", "persona_id").len("n")
              .sort(["user_id", "n", "persona_id"], descending=[False, True, False],
                    nulls_last=True))
    return counts.group_by("user_id", maintain_order=True).agg(
        pl.col("persona_id").drop_nulls().first().alias("dataset_label"),
        pl.col("n").sum().alias("dataset_posts"),
        pl.col("persona_id").drop_nulls().n_unique().alias("dataset_persona_ids"))


def _links(links: pl.DataFrame | None) -> tuple[pl.DataFrame, int]:
    """user_id -> username (most frequent), and how many users link to several usernames."""
    empty = pl.DataFrame(schema={"user_id": pl.String, "link_username": pl.String})
    if links is None or links.height == 0:
        return empty, 0
    counts = (links.drop_nulls(["user_id", "username"]).group_by("user_id", "username")
              .len("n").sort(["user_id", "n", "username"], descending=[False, True, False]))
    per_user = counts.group_by("user_id", maintain_order=True).agg(
        pl.col("username").first().alias("link_username"), pl.len().alias("_k"))
    return per_user.drop("_k"), int((per_user["_k"] > 1).sum())


def assign_personas(posts: pl.DataFrame, rows: pl.DataFrame,
                    username_links: pl.DataFrame | None = None,
                    other_users: pl.Series | None = None) -> PersonaAssignment:
    """Match persona ``rows`` (the personas file as read, every column a string) to the users
    of ``posts`` (user_id, persona_id[, post_id]).

    ``username_links``: (user_id, username) per post, from the dataset or a companion file.
    ``other_users``: user ids seen elsewhere (follow edges).
    """
    rows = rows.with_row_index("persona_row").with_columns(pl.col("persona_row").cast(pl.Int64))
    n_rows = rows.height
    has_label = LABEL_COLUMN in rows.columns
    row_label = pl.col(LABEL_COLUMN) if has_label else pl.lit(None, pl.String)
    rows = rows.with_columns(row_label.alias("row_primary_label"))
    labels = _dataset_labels(posts)

    # ---- the users: every id the files name, and the agent range 0..N-1 when ids are numbers
    seen = [labels["user_id"]]
    if other_users is not None:
        seen.append(other_users.cast(pl.String))
    users = pl.DataFrame({"user_id": pl.concat(seen).drop_nulls().unique()})
    numeric = users.filter(_is_int("user_id"))
    if n_rows and numeric.height == users.height and \
            (numeric["user_id"].cast(pl.Int64).max() or 0) < n_rows:
        users = pl.DataFrame({"user_id": [str(i) for i in range(n_rows)]}).join(
            users, on="user_id", how="full", coalesce=True)
    users = users.join(labels, on="user_id", how="left").with_columns(
        pl.col("dataset_posts").fill_null(0), pl.col("dataset_persona_ids").fill_null(0))

    # ---- row order, always measured: row i against user i's dataset label
    by_order = users.with_columns(
        pl.when(_is_int("user_id")).then(pl.col("user_id").cast(pl.Int64, strict=False))
        .alias("_order_row")).join(
        rows.select(pl.col("persona_row").alias("_order_row"),
                    pl.col("row_primary_label").alias("_order_label")),
        on="_order_row", how="left")
    compared = by_order.filter(pl.col("dataset_label").is_not_null())
    order_bad = compared.filter(pl.col("_order_label").is_null()
                                | (pl.col("_order_label") != pl.col("dataset_label")))
    order_agrees = compared.height > 0 and order_bad.height == 0 and has_label
    no_dataset_labels = compared.height == 0

    # ---- match rows, strongest link first
    match = pl.DataFrame(schema={"user_id": pl.String, "persona_row": pl.Int64,
                                 "persona_match": pl.String})
    rule = "label"
    id_column = next((c for c in USER_ID_COLUMNS if c in rows.columns), None)
    link_frame, several_usernames = _links(username_links)
    duplicate_row_ids = duplicate_usernames = 0
    if id_column is not None:
        keyed = rows.select(pl.col(id_column).str.strip_chars().alias("user_id"), "persona_row")
        duplicate_row_ids = keyed.height - keyed["user_id"].n_unique()
        keyed = keyed.filter(pl.col("user_id").is_unique())
        match = users.select("user_id").join(keyed, on="user_id").with_columns(
            pl.lit("persona_file_user_id").alias("persona_match"))
        rule = "persona_file_user_id"
    elif link_frame.height and "username" in rows.columns:
        named = rows.select(pl.col("username").alias("link_username"), "persona_row")
        duplicate_usernames = named.height - named["link_username"].n_unique()
        named = named.filter(pl.col("link_username").is_unique())
        match = (users.select("user_id").join(link_frame, on="user_id")
                 .join(named, on="link_username")
                 .select("user_id", "persona_row", pl.lit("username").alias("persona_match")))
        # one row claimed by two users: neither is trusted
        match = match.filter(pl.col("persona_row").is_unique())
        rule = "username"
    elif order_agrees or (no_dataset_labels and has_label):
        rule = "row_order" if order_agrees else "row_order_unverified"
        match = by_order.filter(pl.col("_order_row").is_not_null()).select(
            "user_id", pl.col("_order_row").alias("persona_row"),
            pl.lit(rule).alias("persona_match")).join(
            rows.select("persona_row"), on="persona_row")

    # ---- the rest by label: only where one row and one user remain for that label
    rest = users.filter(~pl.col("user_id").is_in(match["user_id"].implode())
                        & pl.col("dataset_label").is_not_null())
    free_rows = rows.filter(~pl.col("persona_row").is_in(match["persona_row"].implode()))
    need = rest.group_by("dataset_label").agg(pl.col("user_id"), pl.len().alias("users"))
    have = (free_rows.group_by(pl.col("row_primary_label").alias("dataset_label"))
            .agg(pl.col("persona_row"), pl.len().alias("rows")))
    per_label = need.join(have, on="dataset_label", how="left").with_columns(
        pl.col("rows").fill_null(0))
    unique = per_label.filter((pl.col("users") == 1) & (pl.col("rows") == 1))
    if unique.height:
        match = pl.concat([match, unique.select(
            pl.col("user_id").list.first(), pl.col("persona_row").list.first(),
            pl.lit("unique_label").alias("persona_match"))])
    ambiguous = per_label.filter(~pl.col("dataset_label").is_in(
        unique["dataset_label"].implode()))

    # ---- one row per user
    row_columns = [c for c in rows.columns if c not in ("persona_row", "user_id")]
    out = (users.join(match, on="user_id", how="left")
           .join(rows.select("persona_row", *row_columns), on="persona_row", how="left")
           .with_columns(
               pl.when(pl.col("persona_match").is_not_null()).then(pl.col("persona_match"))
               .when(pl.col("dataset_label").is_not_null()).then(pl.lit("ambiguous"))
               .otherwise(pl.lit("no_row")).alias("persona_match"),
               pl.coalesce("dataset_label", "row_primary_label").alias("persona"),
               pl.when(pl.col("dataset_label").is_not_null()).then(pl.lit("dataset"))
               .when(pl.col("row_primary_label").is_not_null()).then(pl.lit("persona_row"))
               .alias("persona_source"),
               pl.when(pl.col("dataset_label").is_not_null()
                       & pl.col("row_primary_label").is_not_null())
               .then(pl.col("dataset_label") == pl.col("row_primary_label"))
               .alias("row_label_agrees")))
    out = out.with_columns(pl.col("persona").alias(LABEL_COLUMN))
    lead = ["user_id", "persona", "persona_source", "persona_match", "persona_row",
            "row_primary_label", "row_label_agrees", "dataset_posts", "dataset_persona_ids"]
    out = (out.select(*lead, *[c for c in row_columns if c not in lead])
           .with_columns(pl.col("user_id").cast(pl.Int64, strict=False).alias("_n"))
           .sort("_n", "user_id", nulls_last=True).drop("_n"))

    order_posts = 0
    if order_bad.height and "persona_id" in posts.columns:
        order_posts = posts.filter(pl.col("user_id").is_in(order_bad["user_id"].implode())).height
    matched_rows = set(out["persona_row"].drop_nulls().to_list())
    report = {
        "rule": rule,
        "users": out.height, "persona_rows": n_rows,
        "users_by_match": dict(sorted(out.group_by("persona_match").len().iter_rows())),
        "users_by_persona": dict(sorted(
            out.group_by(pl.col("persona").fill_null("(none)")).len().iter_rows())),
        "row_order_disagreements": {"users": order_bad.height, "posts": order_posts,
                                    "users_compared": compared.height},
        "matched_row_label_disagreements": int(
            out.filter(pl.col("row_label_agrees") == False).height),  # noqa: E712
        "users_with_several_persona_ids": int((out["dataset_persona_ids"] > 1).sum()),
        "users_linked_to_several_usernames": several_usernames,
        "duplicate_usernames_in_persona_rows": duplicate_usernames,
        "duplicate_user_ids_in_persona_rows": duplicate_row_ids,
        "ambiguous_users": int((out["persona_match"] == "ambiguous").sum()),
        "ambiguous_labels": {r["dataset_label"]: {"users": r["users"], "rows": r["rows"]}
                             for r in ambiguous.sort("dataset_label").iter_rows(named=True)},
        "users_without_label": int(out["persona"].is_null().sum()),
        "unmatched_persona_rows": n_rows - len(matched_rows),
    }
    return PersonaAssignment(out, rule, report)
