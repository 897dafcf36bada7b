"""Where each platform's API is; tests point the base URLs at local replay servers.

Hacker News needs no credentials. Bluesky's public AppView serves threads and profiles to
anyone but refuses searchPosts without a login (since 2025): with $BLUESKY_HANDLE and
$BLUESKY_APP_PASSWORD set (an app password, never the account's own), the collector logs in at
``pds_url`` and sends every call there.
"""

import os

import dagster as dg
from pydantic import Field


class BlueskyResource(dg.ConfigurableResource):
    base_url: str = Field(default="https://public.api.bsky.app",
                          description="AppView serving app.bsky.* without a login.")
    pds_url: str = Field(default="https://bsky.social",
                         description="Where to log in (and send calls) when "
                                     "$BLUESKY_HANDLE and $BLUESKY_APP_PASSWORD are set.")

    def adapter(self):
        from botpipeline.clients.platforms.bluesky import (BlueskyAdapter, LoginFailed,
                                                           login_session)

        handle = os.environ.get("BLUESKY_HANDLE", "")
        password = os.environ.get("BLUESKY_APP_PASSWORD", "")
        if not (handle and password):
            return BlueskyAdapter(base_url=self.base_url)
        try:
            return BlueskyAdapter(base_url=self.pds_url,
                                  session=login_session(self.pds_url, handle, password))
        except LoginFailed as exc:
            raise dg.Failure(str(exc)) from None


class HackerNewsResource(dg.ConfigurableResource):
    base_url: str = Field(default="https://hn.algolia.com/api/v1",
                          description="The Algolia Hacker News API.")

    def adapter(self):
        from botpipeline.clients.platforms.hackernews import HackerNewsAdapter

        return HackerNewsAdapter(base_url=self.base_url)
