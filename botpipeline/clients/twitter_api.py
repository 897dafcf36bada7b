"""Twitter API v2 tweet lookup (GET /2/tweets), for hydrating missing parents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

from botpipeline.clients.http import ApiError, send

TWEET_FIELDS = ("author_id,conversation_id,created_at,in_reply_to_user_id,lang,public_metrics,"
                "referenced_tweets,text")
USER_FIELDS = "created_at,description,name,protected,public_metrics,username,verified"
BATCH = 100  # the endpoint's maximum ids per request


class TwitterApiClient:
    def __init__(self, base_url: str, bearer_token: str, *, timeout: float = 30.0,
                 max_retries: int = 5, session: requests.Session | None = None):
        if not bearer_token:
            raise ValueError("no bearer token: set TWITTER_BEARER_TOKEN")
        self.base_url = base_url.rstrip("/")
        self._token = bearer_token
        self.timeout, self.max_retries = timeout, max_retries
        if session is None:
            import requests
            session = requests.Session()
        self.session = session

    def __repr__(self) -> str:  # never show the token
        return f"TwitterApiClient({self.base_url!r})"

    def lookup_tweets(self, ids: Iterable[str]) -> Iterator[dict]:
        """One response page (``data``, ``includes``, ``errors``) per batch of 100 ids."""
        batch: list[str] = []
        for tweet_id in ids:
            batch.append(tweet_id)
            if len(batch) == BATCH:
                yield self._lookup(batch)
                batch = []
        if batch:
            yield self._lookup(batch)

    def _lookup(self, ids: list[str]) -> dict:
        params = {"ids": ",".join(ids), "tweet.fields": TWEET_FIELDS, "expansions": "author_id",
                  "user.fields": USER_FIELDS}
        response = send(lambda: self.session.get(
            f"{self.base_url}/2/tweets", params=params, timeout=self.timeout,
            headers={"Authorization": f"Bearer {self._token}"}), max_retries=self.max_retries,
            what=self.base_url)
        if response.status_code != 200:
            try:
                body = response.json()
                message = body.get("detail") or body.get("title") or str(body)[:200]
            except ValueError:
                message = response.text[:200]
            raise ApiError(response.status_code, f"tweet lookup failed: {message}")
        return response.json()
