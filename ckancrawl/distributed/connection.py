"""Redis clients for distributed mode; the password comes from the environment.

Settings are printed in Scrapy's log, so ``CKANCRAWL_REDIS_URL`` must not hold a
password: a URL with one is refused. A Redis that needs one gets it from the
``CKANCRAWL_REDIS_PASSWORD`` environment variable (``REDISCLI_AUTH``-style), read
here and never stored in a setting.
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from ckancrawl.distributed.keys import DistributedConfigError

PASSWORD_ENV = "CKANCRAWL_REDIS_PASSWORD"
SCHEMES = ("redis", "rediss", "unix")
#: A name that shows in CLIENT LIST. The scheduler's client is synchronous (Scrapy's
#: scheduler interface) and runs on the event loop, so its waits are short: an
#: unreachable Redis must not stall the crawl for scrapy-redis's default 30 s a call.
_OPTIONS = {"client_name": "ckancrawl", "socket_timeout": 5, "socket_connect_timeout": 2}


def check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in SCHEMES:
        raise DistributedConfigError(
            "CKANCRAWL_REDIS_URL is not a Redis URL (redis://host:port/db, rediss://... or unix://...)"
        )
    if parts.password:
        raise DistributedConfigError(
            "CKANCRAWL_REDIS_URL holds a password, and settings are printed in the log: remove it "
            f"from the URL and put it in the {PASSWORD_ENV} environment variable"
        )
    return url


def _options() -> dict[str, Any]:
    password = os.environ.get(PASSWORD_ENV)
    return {**_OPTIONS, **({"password": password} if password else {})}


def sync_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(check_url(url), retry_on_timeout=False, **_options())


def async_client(url: str) -> Any:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(check_url(url), decode_responses=True, retry_on_timeout=True, **_options())
