"""A blocking client for the catalog's Action API: ckanapi with timeouts, retries and
clear errors. Call it from worker threads, never from the event loop.

Every error becomes a :class:`CatalogError` whose ``kind`` says what to do about it:

- ``not authorized`` (HTTP 403): the key in CKAN_API_KEY may not do this. Not retried.
- ``not found`` (HTTP 404): no such dataset or resource. Not retried.
- ``invalid`` (HTTP 409): CKAN refused the data (``errors`` holds its field messages).
  CKAN validates before it writes, so nothing was written. Not retried.
- ``server error``: CKAN answered with its own HTTP 500 JSON (a failed search index
  update is one; CKAN rolls the write back). Retried, except when Solr refused a value
  (its HTTP 4xx in the message): that is ``invalid``.
- ``unavailable``: no answer (connection refused or reset, timeout) or a gateway error
  (502, 503, 504, 429). Retried; when the retries are used up the catalog is taken to
  be down and calls fail at once (``not tried``) for CATALOG_DOWN_PAUSE seconds, so a
  crawl does not wait out the retries of every item while the catalog is away.
- ``bad answer``: not CKAN's envelope (an HTML page, a redirect). Not retried.

Retries wait CATALOG_RETRY_BACKOFF * 2**n seconds (at most CATALOG_RETRY_BACKOFF_MAX),
or what a Retry-After header asks. Only idempotent calls are retried after the request
may have reached CKAN: ``package_patch`` and ``datastore_upsert`` (method upsert) are,
creating calls are not (``idempotent=False``).

At most CATALOG_MAX_CONCURRENT_WRITES write calls run at once, whatever the number of
threads. Each thread has its own ckanapi RemoteCKAN (a requests session is not
shared between threads).

The API key is sent in the ``Authorization`` header only by ckanapi; it is never part
of a message, and :meth:`CatalogClient.scrub` removes it from any text that might
quote it (a proxy's error page echoing headers).

Settings read by :meth:`CatalogClient.from_settings` (defaults in brackets):
CATALOG_TIMEOUT [30.0], CATALOG_RETRY_TIMES [3], CATALOG_RETRY_BACKOFF [1.0],
CATALOG_RETRY_BACKOFF_MAX [30.0], CATALOG_MAX_CONCURRENT_WRITES [2],
CATALOG_DOWN_PAUSE [60.0]. The key comes from the environment: CKAN_API_KEY.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from ckanapi import RemoteCKAN
from ckanapi.errors import (
    CKANAPIError,
    NotAuthorized,
    NotFound,
    SearchError,
    SearchIndexError,
    SearchQueryError,
    ServerIncompatibleError,
    ValidationError,
)

logger = logging.getLogger(__name__)

API_KEY_VARIABLE = "CKAN_API_KEY"
#: Gateway answers that say "try later" rather than "CKAN failed".
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
KINDS = ("not authorized", "not found", "invalid", "server error", "unavailable", "bad answer")
RETRIED_KINDS = frozenset({"server error", "unavailable"})


def api_key_from_env() -> str | None:
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    return key or None


class CatalogError(Exception):
    """A catalog call failed; ``kind`` is one of KINDS (see the module docstring)."""

    def __init__(self, kind: str, action: str, detail: str, errors: dict[str, Any] | None = None,
                 status: int | None = None):
        super().__init__(f"{kind}: {action}: {detail}")
        self.kind = kind
        self.action = action
        self.detail = detail
        self.errors = errors or {}
        self.status = status


class _Remote(RemoteCKAN):
    """ckanapi's RemoteCKAN that also keeps the HTTP status and Retry-After of the last
    answer: ckanapi folds every unrecognised error into one CKANAPIError."""

    last_status: int | None = None
    last_retry_after: str | None = None

    def _request_fn(self, url: str, data: Any, headers: dict[str, str], files: Any, requests_kwargs: dict[str, Any]):
        self.last_status = None
        # allow_redirects=False as ckanapi does: a redirected POST loses its body.
        response = self.session.post(url, data=data, headers=headers, files=files, allow_redirects=False,
                                     **requests_kwargs)
        self.last_status = response.status_code
        self.last_retry_after = response.headers.get("Retry-After")
        return response.status_code, response.text


class CatalogClient:
    """Blocking, thread-safe calls to one CKAN's Action API (see the module docstring)."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        retry_times: int = 3,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 30.0,
        max_concurrent_writes: int = 2,
        down_pause: float = 60.0,
        user_agent: str = "ckancrawl",
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.retry_times = max(0, retry_times)
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.down_pause = down_pause
        self.user_agent = user_agent
        self._sleep = sleep
        self._writes = threading.BoundedSemaphore(max(1, max_concurrent_writes))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""
        self._sessions: list[_Remote] = []
        #: Calls per action, retries, failures per kind: read by the pipelines' stats.
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Any, url: str, api_key: str | None) -> CatalogClient:
        return cls(
            url,
            api_key,
            timeout=settings.getfloat("CATALOG_TIMEOUT", 30.0),
            retry_times=settings.getint("CATALOG_RETRY_TIMES", 3),
            retry_backoff=settings.getfloat("CATALOG_RETRY_BACKOFF", 1.0),
            retry_backoff_max=settings.getfloat("CATALOG_RETRY_BACKOFF_MAX", 30.0),
            max_concurrent_writes=settings.getint("CATALOG_MAX_CONCURRENT_WRITES", 2),
            down_pause=settings.getfloat("CATALOG_DOWN_PAUSE", 60.0),
            user_agent=settings.get("USER_AGENT") or "ckancrawl",
        )

    def __repr__(self) -> str:  # never the key
        return f"CatalogClient({self.url!r})"

    # -- calls -----------------------------------------------------------------------

    def call(self, action: str, data: dict[str, Any] | None = None, *, write: bool = False,
             idempotent: bool = True) -> Any:
        """Call ``action``; return its result or raise CatalogError."""
        self._count(f"calls/{action}")
        if write:
            with self._writes:
                self._count("writes")
                return self._call_with_retries(action, data or {}, idempotent)
        return self._call_with_retries(action, data or {}, idempotent)

    def _call_with_retries(self, action: str, data: dict[str, Any], idempotent: bool) -> Any:
        attempt = 0
        while True:
            self._refuse_while_down(action)
            try:
                result = self._call_once(action, data)
            except CatalogError as error:
                retry = error.kind in RETRIED_KINDS and (idempotent or self._never_sent(error))
                if not retry or attempt >= self.retry_times:
                    self._count(f"errors/{error.kind}")
                    if error.kind == "unavailable":
                        self._mark_down(error)
                    raise
                delay = self._delay(attempt, error)
                attempt += 1
                self._count("retries")
                logger.info("Catalog %s failed (%s); retry %d of %d in %.1f s",
                            action, error.detail, attempt, self.retry_times, delay)
                self._sleep(delay)
                continue
            with self._lock:
                self._down_until = 0.0
            return result

    def _call_once(self, action: str, data: dict[str, Any]) -> Any:
        remote = self._remote()
        try:
            return remote.call_action(action, data, requests_kwargs={"timeout": (min(self.timeout, 10.0),
                                                                                 self.timeout)})
        except NotAuthorized as error:
            raise CatalogError("not authorized", action, self._message(error, 403), status=403) from None
        except NotFound as error:
            raise CatalogError("not found", action, self._message(error, 404), status=404) from None
        except ValidationError as error:
            errors = {k: v for k, v in dict(getattr(error, "error_dict", {}) or {}).items() if k != "__type"}
            raise CatalogError("invalid", action, self.scrub(_format_errors(errors)), errors, status=409) from None
        except SearchIndexError as error:
            # CKAN rolls the write back. Solr refusing a value (its HTTP 4xx) will refuse it
            # again; anything else (Solr down, overloaded) is worth a retry.
            text = self.scrub(f"search index update failed: {error}"[:400])
            kind = "invalid" if re.search(r"\(HTTP 4\d\d\)", str(error)) else "server error"
            raise CatalogError(kind, action, text, status=500) from None
        except (SearchError, SearchQueryError) as error:
            raise CatalogError("invalid", action, self.scrub(f"search refused: {error}"[:300]), status=409) from None
        except ServerIncompatibleError:
            raise CatalogError("bad answer", action, f"{self.url} does not answer like a CKAN Action API "
                               f"(HTTP {remote.last_status})", status=remote.last_status) from None
        except CKANAPIError as error:
            raise self._classify_status(action, remote, error) from None
        except requests.Timeout:
            raise CatalogError("unavailable", action, f"no answer within {self.timeout:g} s (timeout)") from None
        except requests.ConnectionError as error:
            raise CatalogError("unavailable", action,
                               self.scrub(f"connection failed: {_root_cause(error, self.url)}")) from None
        except requests.RequestException as error:
            raise CatalogError("unavailable", action, self.scrub(f"{type(error).__name__}: {error}"[:300])) from None

    def _classify_status(self, action: str, remote: _Remote, error: CKANAPIError) -> CatalogError:
        status = remote.last_status
        if status is None:
            return CatalogError("bad answer", action, self.scrub(str(error))[:300])
        if status in UNAVAILABLE_STATUSES:
            error_ = CatalogError("unavailable", action, f"HTTP {status} from {self.url}", status=status)
            error_.retry_after = remote.last_retry_after  # type: ignore[attr-defined]
            return error_
        if 300 <= status < 400:
            return CatalogError("bad answer", action, f"HTTP {status}: the catalog redirects; give its final URL "
                                "(https, no trailing path) in CATALOG_URL", status=status)
        if status >= 500:
            return CatalogError("server error", action, f"HTTP {status} (CKAN's own error; see the catalog's log)",
                                status=status)
        if status == 403:
            return CatalogError("not authorized", action, f"HTTP 403 from {self.url}", status=status)
        return CatalogError("bad answer", action, f"HTTP {status}", status=status)

    @staticmethod
    def _never_sent(error: CatalogError) -> bool:
        """True when the request cannot have reached CKAN, so even a create may retry."""
        return error.kind == "unavailable" and "connection refused" in error.detail.lower()

    def _message(self, error: CKANAPIError, status: int) -> str:
        payload = getattr(error, "extra_msg", None)
        if isinstance(payload, dict):
            text = str(payload.get("message") or "")
        else:
            text = str(error)
        return self.scrub(f"{text or 'no message'} (HTTP {status})")[:300]

    def _delay(self, attempt: int, error: CatalogError) -> float:
        delay = min(self.retry_backoff * 2**attempt, self.retry_backoff_max)
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            try:
                delay = min(max(delay, float(retry_after)), self.retry_backoff_max)
            except ValueError:
                pass
        return delay

    # -- the catalog being down ---------------------------------------------------------

    def _mark_down(self, error: CatalogError) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.down_pause
            self._down_reason = error.detail
        self._count("down")
        logger.warning("The catalog at %s does not answer (%s): catalog calls are not tried for %.0f s",
                       self.url, error.detail, self.down_pause)

    def _refuse_while_down(self, action: str) -> None:
        with self._lock:
            left = self._down_until - time.monotonic()
            reason = self._down_reason
        if left > 0:
            self._count("not_tried")
            raise CatalogError("unavailable", action, f"not tried: the catalog did not answer ({reason}); "
                               f"next try in {left:.0f} s")

    def is_down(self) -> bool:
        with self._lock:
            return self._down_until > time.monotonic()

    # -- plumbing -----------------------------------------------------------------------

    def _remote(self) -> _Remote:
        remote = getattr(self._local, "remote", None)
        if remote is None:
            remote = _Remote(self.url, apikey=self._api_key, user_agent=self.user_agent, session=requests.Session())
            self._local.remote = remote
            with self._lock:
                self._sessions.append(remote)
        return remote

    def _count(self, name: str, value: int = 1) -> None:
        with self._lock:
            self.counts[name] += value

    def scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for remote in sessions:
            remote.close()


def _format_errors(errors: dict[str, Any]) -> str:
    parts = []
    for field, messages in errors.items():
        if isinstance(messages, list):
            messages = "; ".join(str(m) for m in messages)
        parts.append(f"{field}: {messages}")
    return ", ".join(parts) or "CKAN refused the data"


def _root_cause(error: BaseException, url: str) -> str:
    """What a requests connection error amounts to: refused, reset, no DNS, or its text."""
    text = str(error)
    lowered = text.lower()
    if any(word in lowered for word in ("nameresolution", "failed to resolve", "name or service not known",
                                        "nodename nor servname", "temporary failure in name resolution")):
        return f"cannot resolve {urlsplit(url).hostname} (DNS)"
    if "refused" in lowered:
        return "connection refused"
    if any(word in lowered for word in ("reset", "aborted", "remotedisconnected", "closed connection")):
        return "connection reset"
    return text[:200]
