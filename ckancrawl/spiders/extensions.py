"""``extensions``: the GitHub metrics of every CKAN extension listed in the catalog.

Spider arguments (one source of repositories; the catalog is the default):
- ``catalog=URL``: read ``extension`` datasets from that catalog (else ``CATALOG_URL``).
- ``repos=PATH``: one repository per line, as a URL or ``owner/name``; ``#`` comments.
- ``repo=URL|owner/name``: a single repository.
- ``run_timestamp=ISO8601``: see :class:`~ckancrawl.spiders.ckan_api.CkanApiSpider`.

With a token (``GITHUB_TOKEN`` or ``GITHUB_TOKENS`` in the environment), repositories
are read in batches with one aliased GraphQL query (everything but the contributors),
then one REST request per repository counts the contributors (``per_page=1``, the page
number of the ``rel="last"`` link). That is about one request per repository.
Items stream out as each repository's contributors answer; the ETag store is written
after each batch, so a crash loses at most the batches in flight.

A weekly rerun of unchanged repositories is cheap: GraphQL cannot be conditional, but the
contributors request is sent with ``If-None-Match`` and answered 304, which GitHub does
not count against the budget. The ETag is only trusted while the repository's
``pushedAt`` (read in the same run's GraphQL batch) is the one stored with it: a push
can change the count (the ``rel="last"`` link) without changing the page's body.

Without a token, a REST-only mode reads each repository with six requests within the
anonymous 60 requests an hour, waiting for each reset, and cannot count discussions.

Renamed and transferred repositories are followed (GraphQL resolves old names; REST
answers 301) and both names are recorded. A repository GraphQL cannot resolve is asked
once over REST to tell deleted (404) from blocked (451) from moved (301). A batch that
fails as a whole (5xx, timeout) is split in halves until the culprit is alone, so one
bad repository never fails its batch.

Settings (defaults in brackets):
- ``GITHUB_API_URL`` [https://api.github.com]: REST API root (GitHub Enterprise:
  ``https://HOST/api/v3``).
- ``GITHUB_GRAPHQL_URL`` [https://api.github.com/graphql] (Enterprise:
  ``https://HOST/api/graphql``).
- ``GITHUB_BATCH_SIZE`` [40]: repositories per GraphQL query (1-100; 25-50 advised).
- ``GITHUB_CONCURRENT_REQUESTS`` [4]: GitHub requests in flight at once (the
  ``github`` download slot and the gate middleware).
- ``GITHUB_CONDITIONAL_REQUESTS`` [True]: use and keep ETags.
- ``GITHUB_CACHE_DIR``: where the ETag store lives (see ``ckancrawl.github.etag_store``).
- the rate-limit settings of ``ckancrawl.middlewares.github_rate_limit``.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scrapy
from scrapy import signals
from scrapy.http import Response
from scrapy.settings import SETTINGS_PRIORITIES
from twisted.python.failure import Failure

from ckancrawl.failures import KINDS, FetchError, decode_json, describe_exception
from ckancrawl.github.etag_store import ETagStore, default_cache_dir
from ckancrawl.github.graphql_query import (
    METRICS_OF_GROUP,
    RepoAnswer,
    alias,
    request_body,
    split_answer,
)
from ckancrawl.github.metrics import count_from_link, from_graphql, from_rest_repository, language_shares
from ckancrawl.github.repo_urls import RepoRef, other_code_host, parse_repository, repository_from_dataset
from ckancrawl.github.tokens import TokenPool
from ckancrawl.items import ExtensionSnapshot
from ckancrawl.middlewares.github_rate_limit import (
    META_HINT,
    META_RESOURCE,
    GitHubGateMiddleware,
    GitHubGaveUp,
    GitHubRateLimitMiddleware,
)
from ckancrawl.spiders.catalog import CatalogSpider
from ckancrawl.spiders.ckan_api import ERROR_STATUSES

#: Whole-batch failures that one repository can cause (GitHub times out on a heavy
#: repository with a 502 or a "Something went wrong" error, or the connection breaks):
#: worth splitting the batch for. Rate limits, refused tokens and invalid queries would
#: fail every half alike.
SPLITTABLE = {"timeout", "connection lost", "truncated json", "empty answer"}
#: Requests of the token-less REST-only mode per repository (for the log).
REST_REQUESTS_PER_REPOSITORY = 6
GITHUB_SLOT = "github"


@dataclass
class ExtensionTarget:
    """An extension to measure, as found in the catalog, a file or an argument."""

    extension: str
    source: str
    listed_url: str | None
    repo: RepoRef | None = None
    catalog_dataset: str | None = None
    catalog_dataset_id: str | None = None
    #: Set when the listing names no usable GitHub repository.
    failure: FetchError | None = None

    def snapshot(self, run_timestamp: str) -> ExtensionSnapshot:
        return ExtensionSnapshot(
            extension=self.extension,
            run_timestamp=run_timestamp,
            source=self.source,
            listed_url=self.listed_url,
            catalog_dataset=self.catalog_dataset,
            catalog_dataset_id=self.catalog_dataset_id,
            repository=self.repo.full_name if self.repo else None,
            failure=str(self.failure) if self.failure else None,
        )


@dataclass
class Measured:
    """What was learnt about one repository."""

    metrics: dict[str, Any]
    errors: dict[str, str]
    not_modified: list[str]
    failure: FetchError | None = None


class ExtensionsSpider(CatalogSpider):
    name = "extensions"
    dataset_type = "extension"

    def __init__(self, *args: Any, repos: str | None = None, repo: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        given = [n for n, v in (("catalog", self._catalog_arg), ("repos", repos), ("repo", repo)) if v]
        if len(given) > 1:
            raise ValueError(f"give only one of -a catalog, -a repos, -a repo (got {', '.join(given)})")
        if repos is not None and not Path(repos).is_file():
            raise ValueError(f"repos={repos!r}: no such file; give a text file with one repository per line")
        if repo is not None and parse_repository(repo, allow_bare=True) is None:
            raise ValueError(f"repo={repo!r} is not a GitHub repository URL or owner/name")
        self.repos_file = repos
        self.single_repo = repo

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", GitHubRateLimitMiddleware, 560)
        settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", GitHubGateMiddleware, 950)
        # At spider priority: `scrapy crawl` merges the project settings in again
        # afterwards, and an equal priority would drop the middlewares.
        priority = max(settings.getpriority("DOWNLOADER_MIDDLEWARES") or 0, SETTINGS_PRIORITIES["spider"])
        settings.set("DOWNLOADER_MIDDLEWARES", settings.getdict("DOWNLOADER_MIDDLEWARES"), priority=priority)
        slots = settings.getdict("DOWNLOAD_SLOTS")
        if GITHUB_SLOT not in slots:
            slots[GITHUB_SLOT] = {
                "concurrency": settings.getint("GITHUB_CONCURRENT_REQUESTS", 4),
                "delay": 0.0,
                "jitter": 0.0,
            }
            settings.set("DOWNLOAD_SLOTS", slots, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> "ExtensionsSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.api_url = settings.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        spider.graphql_url = settings.get("GITHUB_GRAPHQL_URL", "https://api.github.com/graphql")
        spider.batch_size = settings.getint("GITHUB_BATCH_SIZE", 40)
        if not 1 <= spider.batch_size <= 100:
            raise ValueError(f"GITHUB_BATCH_SIZE={spider.batch_size}: give 1 to 100 (GitHub advises 25 to 50)")
        spider.conditional = settings.getbool("GITHUB_CONDITIONAL_REQUESTS", True)
        spider.store = ETagStore(default_cache_dir(settings)) if spider.conditional else None
        spider.pool = TokenPool.for_crawler(crawler)
        crawler.signals.connect(spider._close_store, signal=signals.spider_closed)
        return spider

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()

    # -- what to measure ---------------------------------------------------------------

    async def targets(self) -> AsyncIterator[ExtensionTarget]:
        seen: set[str] = set()
        async for target in self._listed_targets():
            if target.source != "catalog" and target.repo is not None:
                if target.repo.key in seen:
                    self.crawler.stats.inc_value("extensions/duplicate_listing")
                    continue
                seen.add(target.repo.key)
            yield target

    async def _listed_targets(self) -> AsyncIterator[ExtensionTarget]:
        if self.single_repo:
            yield self._target_from_text(self.single_repo, "repo")
        elif self.repos_file:
            for line in Path(self.repos_file).read_text(encoding="utf-8").splitlines():
                text = line.split("#", 1)[0].strip()
                if text:
                    yield self._target_from_text(text, "repos")
        else:
            async for dataset in self.catalog_datasets():
                yield self._target_from_dataset(dataset)

    @staticmethod
    def _target_from_text(text: str, source: str) -> ExtensionTarget:
        ref = parse_repository(text, allow_bare=True)
        if ref is None and other_code_host(text):
            return ExtensionTarget(
                text, source, text,
                failure=FetchError("not github", f"{text} is on {other_code_host(text)}; only GitHub repositories are measured"),
            )
        if ref is None:
            return ExtensionTarget(
                text, source, text,
                failure=FetchError("bad url", f"{text!r} is not a GitHub repository URL or owner/name"),
            )
        return ExtensionTarget(ref.key, source, text, ref)

    @staticmethod
    def _target_from_dataset(dataset: dict[str, Any]) -> ExtensionTarget:
        name = str(dataset.get("name") or dataset.get("id"))
        listed, found = repository_from_dataset(dataset)
        target = ExtensionTarget(name, "catalog", listed, None, name, dataset.get("id"))
        if isinstance(found, FetchError):
            target.failure = found
        else:
            target.repo = found
        return target

    # -- scheduling ----------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        graphql = self._announce_mode()
        batch: dict[str, list[ExtensionTarget]] = {}
        async for target in self.targets():
            if target.failure is not None or target.repo is None:
                yield self._finish(target.snapshot(self.run_timestamp))
            elif not graphql:
                yield self._rest_request(target)
            else:
                batch.setdefault(target.repo.key, []).append(target)
                if len(batch) >= self.batch_size:
                    yield self._batch_request(list(batch.values()))
                    batch = {}
        if batch:
            yield self._batch_request(list(batch.values()))

    def _announce_mode(self) -> bool:
        if self.pool.authenticated:
            self.logger.info(
                "GitHub: one GraphQL query per %d repositories at %s, one REST request per repository "
                "for its contributors at %s; %d token(s) from the environment; ETags %s",
                self.batch_size, self.graphql_url, self.api_url, self.pool.size,
                f"in {self.store.path}" if self.store is not None else "off",
            )
            return True
        self.logger.warning(
            "No GITHUB_TOKEN or GITHUB_TOKENS in the environment: REST-only mode. Without a token "
            "GitHub allows 60 requests an hour and has no GraphQL; this mode needs %d requests per "
            "repository (about %d repositories an hour) and waits for each hourly reset, and it cannot "
            "count discussions. Set GITHUB_TOKEN for one GraphQL query per %d repositories.",
            REST_REQUESTS_PER_REPOSITORY, 60 // REST_REQUESTS_PER_REPOSITORY, self.batch_size,
        )
        self.crawler.stats.set_value("extensions/mode", "rest-only")
        return False

    def _github_meta(self, resource: str, hint: int | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            META_RESOURCE: resource,
            "download_slot": GITHUB_SLOT,
            # Pacing follows GitHub's limits (see the middleware), not latency.
            "autothrottle_dont_adjust_delay": True,
            "handle_httpstatus_list": ERROR_STATUSES,
        }
        if hint is not None:
            meta[META_HINT] = hint
        return meta

    def _graphql_request(self, refs: list[RepoRef], without: frozenset[str] = frozenset(), **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(
            self.graphql_url,
            method="POST",
            body=request_body(refs, without),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            meta=self._github_meta("graphql"),
            dont_filter=True,
            **kwargs,
        )

    def _batch_request(self, groups: list[list[ExtensionTarget]]) -> scrapy.Request:
        self.crawler.stats.inc_value("extensions/batches")
        return self._graphql_request(
            [group[0].repo for group in groups],  # type: ignore[misc]
            callback=self.parse_batch,
            errback=self.batch_failed,
            cb_kwargs={"groups": groups},
        )

    def _rest_get(self, url: str, hint: int | None = None, headers: dict[str, str] | None = None, **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(
            url,
            headers={"Accept": "application/vnd.github+json", **(headers or {})},
            meta=self._github_meta("core", hint),
            dont_filter=True,
            **kwargs,
        )

    async def _download(self, request: scrapy.Request) -> Response:
        """A GitHub request through the downloader (and its middlewares), now."""
        try:
            return await self.crawler.engine.download_async(request)
        except Exception as exc:  # every download failure becomes a reason
            raise self._describe(exc) from None

    def _describe(self, exc: BaseException | Failure) -> FetchError:
        value = exc.value if isinstance(exc, Failure) else exc
        if isinstance(value, GitHubGaveUp):
            kind, _, detail = str(value).partition(": ")
            return FetchError(kind, detail) if kind in KINDS and detail else FetchError("error", str(value))
        return describe_exception(value, timeout=self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT"))

    # -- GraphQL batches -------------------------------------------------------------------

    async def parse_batch(self, response: Response, groups: list[list[ExtensionTarget]]) -> AsyncIterator[Any]:
        try:
            answer = split_answer(self._graphql_payload(response), len(groups))
        except FetchError as error:
            for output in self._batch_failure(groups, error):
                yield output
            return
        self._note_cost(answer.rate_limit)
        for error in answer.other_errors:
            self.logger.warning("GraphQL error outside any repository in a batch: %s", error)
        pending = [
            self._measure_group(group, answer.repos[alias(index)]) for index, group in enumerate(groups)
        ]
        async for item in self._as_they_come(pending):
            yield item
        await self._flush_store()

    async def batch_failed(self, failure: Failure) -> AsyncIterator[Any]:
        groups = failure.request.cb_kwargs["groups"]
        for output in self._batch_failure(groups, self._describe(failure)):
            yield output

    def _batch_failure(self, groups: list[list[ExtensionTarget]], error: FetchError) -> list[Any]:
        if len(groups) > 1 and _splittable(error):
            self.crawler.stats.inc_value("extensions/batch_splits")
            self.logger.warning(
                "A GraphQL batch of %d repositories failed (%s); asking again in two halves", len(groups), error
            )
            half = len(groups) // 2
            return [self._batch_request(groups[:half]), self._batch_request(groups[half:])]
        outputs = []
        for group in groups:
            for target in group:
                snapshot = target.snapshot(self.run_timestamp)
                snapshot.failure = str(error)
                outputs.append(self._finish(snapshot))
        return outputs

    def _graphql_payload(self, response: Response) -> Any:
        if response.status >= 400:
            raise self._http_error(response, "GraphQL")
        return decode_json(response)

    def _http_error(self, response: Response, what: str) -> FetchError:
        message = _message(response)
        detail = f"{what} answered HTTP {response.status}" + (f" ({message})" if message else "")
        if response.status in (403, 429) and (
            b"rate limit" in response.body[:2048].lower() or response.headers.get(b"X-RateLimit-Remaining") == b"0"
        ):
            return FetchError("rate limited", f"{detail}; retries used up", response.status)
        return FetchError("http error", f"{detail} at {response.url}", response.status)

    def _note_cost(self, rate_limit: dict[str, Any] | None) -> None:
        if rate_limit and isinstance(rate_limit.get("cost"), int):
            self.crawler.stats.inc_value("extensions/graphql/cost", rate_limit["cost"])

    @staticmethod
    async def _as_they_come(pending: list[Awaitable[list[ExtensionSnapshot]]]) -> AsyncIterator[ExtensionSnapshot]:
        for next_done in asyncio.as_completed(pending):
            for item in await next_done:
                yield item

    async def _measure_group(self, group: list[ExtensionTarget], answer: RepoAnswer) -> list[ExtensionSnapshot]:
        ref = group[0].repo
        assert ref is not None
        try:
            measured = await self._measure(ref, answer)
        except FetchError as error:  # pragma: no cover - _measure records its failures
            measured = Measured({}, {}, [], error)
        return [self._snapshot(target, measured) for target in group]

    async def _measure(self, ref: RepoRef, answer: RepoAnswer, without: frozenset[str] = frozenset()) -> Measured:
        if answer.node is None:
            return await self._unresolved(ref, answer, without)
        metrics, errors = from_graphql(answer.node, skipped=without)
        for error in answer.errors:
            if error.group and error.group != "identity":
                errors[error.group] = str(FetchError("graphql error", str(error)))
                for metric in METRICS_OF_GROUP.get(error.group, (error.group,)):
                    metrics.pop(metric, None)
        not_modified: list[str] = []
        if "identity" in errors:
            return Measured(metrics, errors, not_modified, FetchError("wrong shape", errors.pop("identity")))
        if "default_branch" not in errors and metrics.get("default_branch") is None:
            metrics["contributors_count"] = 0  # an empty repository has no commits
        else:
            count, error, cached = await self._contributors(
                metrics["full_name"], metrics.get("repo_id"), metrics.get("last_update")
            )
            if error is not None:
                errors["contributors_count"] = str(error)
            metrics["contributors_count"] = count
            if cached:
                not_modified.append("contributors_count")
        return Measured(metrics, errors, not_modified)

    async def _unresolved(self, ref: RepoRef, answer: RepoAnswer, without: frozenset[str]) -> Measured:
        """A repository alias that came back null: a failed field, or no such repository."""
        failed_fields = answer.failed_groups - {"identity"} - without
        if failed_fields:
            # A non-null field failed and nulled the whole repository: ask again without it.
            self.crawler.stats.inc_value("extensions/graphql/field_retries")
            retry_without = without | failed_fields
            try:
                response = await self._download(self._graphql_request([ref], retry_without))
                retry = split_answer(self._graphql_payload(response), 1).repos[alias(0)]
            except FetchError as error:
                return Measured({}, {}, [], error)
            measured = await self._measure(ref, retry, retry_without)
            for error in answer.errors:
                if error.group in failed_fields:
                    measured.errors[error.group] = str(FetchError("graphql error", str(error)))
            return measured
        kinds = {error.type for error in answer.errors}
        if answer.errors and "NOT_FOUND" not in kinds:
            return Measured({}, {}, [], FetchError("graphql error", "; ".join(str(e) for e in answer.errors)[:500]))
        return await self._check_over_rest(ref)

    async def _check_over_rest(self, ref: RepoRef) -> Measured:
        """GraphQL found nothing: deleted (404), blocked (451) or moved where GraphQL did not follow."""
        self.crawler.stats.inc_value("extensions/rest_checks")
        try:
            response = await self._download(self._rest_get(f"{self.api_url}/repos/{ref.full_name}"))
        except FetchError as error:
            return Measured({}, {}, [], error)
        if response.status >= 400:
            return Measured({}, {}, [], self._repository_error(ref, response))
        try:
            moved = from_rest_repository(decode_json(response))["full_name"]
        except FetchError as error:
            return Measured({}, {}, [], error)
        moved_ref = parse_repository(moved, allow_bare=True)
        if moved_ref is None or moved_ref.key == ref.key:
            return Measured({}, {}, [], FetchError(
                "graphql error", f"GraphQL could not resolve {ref.full_name} although REST answers for it"
            ))
        try:
            response = await self._download(self._graphql_request([moved_ref]))
            retry = split_answer(self._graphql_payload(response), 1).repos[alias(0)]
        except FetchError as error:
            return Measured({}, {}, [], error)
        if retry.node is None:
            return Measured({}, {}, [], FetchError("graphql error", f"{ref.full_name} moved to {moved} which GraphQL cannot resolve"))
        return await self._measure(moved_ref, retry)

    # -- contributors -------------------------------------------------------------------

    async def _contributors(
        self, full_name: str, repo_id: int | None, pushed_at: str | None
    ) -> tuple[int | None, FetchError | None, bool]:
        """(count, why unknown, confirmed by a 304) for one repository."""
        url = f"{self.api_url}/repos/{full_name}/contributors?per_page=1&anon=1"
        key = f"contributors:{repo_id}" if repo_id is not None else None
        entry = self.store.get(key) if self.store is not None and key else None
        headers = {}
        # A 304 only proves the first page's body unchanged; the count is in the Link
        # header, which can change with a push. Trust the ETag only without a push.
        if entry is not None and isinstance(entry.value, dict) and entry.value.get("pushed_at") == pushed_at:
            headers["If-None-Match"] = entry.etag
        try:
            response = await self._download(self._rest_get(url, hint=repo_id, headers=headers))
        except FetchError as error:
            return None, error, False
        if response.status == 304 and entry is not None:
            self.store.touch(key)  # type: ignore[union-attr,arg-type]
            return entry.value["count"], None, True
        if response.status == 204:
            return 0, None, False  # GitHub's answer for an empty repository
        if response.status == 403 and b"too large" in response.body[:1024].lower():
            return None, FetchError(
                "too large",
                f"GitHub does not list the contributors of {full_name}: the history or contributor list is "
                "too large for the API (HTTP 403)",
                403,
            ), False
        if response.status >= 300:
            return None, self._http_error(response, "contributors"), False
        try:
            count = count_from_link(response.headers.get(b"Link"), decode_json(response), "contributors")
        except FetchError as error:
            return None, error, False
        etag = response.headers.get(b"ETag")
        if self.store is not None and key and etag:
            self.store.put(key, etag.decode("latin-1"), {"count": count, "pushed_at": pushed_at})
        return count, None, False

    async def _flush_store(self) -> None:
        if self.store is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.store.flush)

    # -- the token-less REST-only mode ---------------------------------------------------------

    def _rest_request(self, target: ExtensionTarget) -> scrapy.Request:
        assert target.repo is not None
        return self._rest_get(
            f"{self.api_url}/repos/{target.repo.full_name}",
            callback=self.parse_rest_repository,
            errback=self.rest_repository_failed,
            cb_kwargs={"target": target},
        )

    async def parse_rest_repository(self, response: Response, target: ExtensionTarget) -> AsyncIterator[Any]:
        ref = target.repo
        assert ref is not None
        if response.status >= 400:
            measured = Measured({}, {}, [], self._repository_error(ref, response))
        else:
            measured = await self._measure_over_rest(response)
        yield self._snapshot(target, measured)

    async def rest_repository_failed(self, failure: Failure) -> AsyncIterator[Any]:
        target = failure.request.cb_kwargs["target"]
        yield self._snapshot(target, Measured({}, {}, [], self._describe(failure)))

    def _repository_error(self, ref: RepoRef, response: Response) -> FetchError:
        """Why ``GET /repos/{owner}/{repo}`` failed: deleted (404), blocked (451) or else."""
        if response.status == 404:
            return FetchError(
                "not found", f"GitHub has no repository {ref.full_name} (deleted, made private or never existed)", 404
            )
        if response.status == 451:
            body = _json_or_none(response)
            block = body.get("block") if isinstance(body, dict) and isinstance(body.get("block"), dict) else {}
            since = f" since {block['created_at']}" if block.get("created_at") else ""
            why = block.get("reason") or "legal reasons"
            return FetchError("blocked", f"GitHub blocks access to {ref.full_name} ({why}{since})", 451)
        return self._http_error(response, f"GET /repos/{ref.full_name}")

    async def _measure_over_rest(self, response: Response) -> Measured:
        try:
            repo = from_rest_repository(decode_json(response))
        except FetchError as error:
            return Measured({}, {}, [], error)
        full = repo.pop("full_name")
        metrics: dict[str, Any] = {"full_name": full, **repo}
        errors: dict[str, str] = {}
        base = f"{self.api_url}/repos/{full}"

        async def count(path: str, what: str) -> int:
            page = await self._download(self._rest_get(f"{base}/{path}"))
            if page.status >= 400:
                raise self._http_error(page, what)
            return count_from_link(page.headers.get(b"Link"), decode_json(page), what)

        async def latest() -> dict[str, Any] | None:
            page = await self._download(self._rest_get(f"{base}/releases/latest"))
            if page.status == 404:
                return None  # no release is marked latest (none, or only drafts and pre-releases)
            if page.status >= 400:
                raise self._http_error(page, "releases/latest")
            return decode_json(page)

        async def languages() -> dict[str, float]:
            page = await self._download(self._rest_get(f"{base}/languages"))
            if page.status >= 400:
                raise self._http_error(page, "languages")
            sizes = decode_json(page)
            if not isinstance(sizes, dict):
                raise FetchError("wrong shape", "languages is not an object")
            return language_shares({str(k): int(v) for k, v in sizes.items()})

        async def guarded(metric: str, work: Awaitable[Any]) -> Any:
            try:
                return await work
            except FetchError as error:
                errors[metric] = str(error)
                return None

        pulls, releases, latest_release, shares, contributors = await asyncio.gather(
            guarded("open_pull_requests", count("pulls?state=open&per_page=1", "open pull requests")),
            guarded("total_releases", count("releases?per_page=1", "releases")),
            guarded("latest_release", latest()),
            guarded("language_stats", languages()),
            self._contributors(full, None, None),
        )
        metrics["open_pull_requests"] = pulls
        metrics["total_releases"] = releases
        if "latest_release" not in errors:
            metrics["latest_release"] = latest_release.get("tag_name") if latest_release else None
            metrics["release_date"] = latest_release.get("published_at") if latest_release else None
        metrics["language_stats"] = shares
        both = metrics.pop("open_issues_and_pulls")
        if pulls is not None:
            metrics["open_issues"] = max(0, both - pulls)
        else:
            errors["open_issues"] = "http error: open pull requests unknown, so issues cannot be told from them"
        count_value, count_error, _ = contributors
        metrics["contributors_count"] = count_value
        if count_error is not None:
            errors["contributors_count"] = str(count_error)
        errors["discussions"] = str(FetchError(
            "needs token", "GitHub's REST API has no discussions count; set GITHUB_TOKEN to read it over GraphQL"
        ))
        return Measured(metrics, errors, [])

    # -- items -------------------------------------------------------------------------

    def _snapshot(self, target: ExtensionTarget, measured: Measured) -> ExtensionSnapshot:
        snapshot = target.snapshot(self.run_timestamp)
        if measured.failure is not None:
            snapshot.failure = str(measured.failure)
            return self._finish(snapshot)
        for name, value in measured.metrics.items():
            if hasattr(snapshot, name):
                setattr(snapshot, name, value)
        snapshot.errors = dict(measured.errors)
        snapshot.not_modified = list(measured.not_modified)
        if target.repo is not None and snapshot.full_name and snapshot.full_name.lower() != target.repo.key:
            snapshot.renamed_from = target.repo.full_name
        return self._finish(snapshot)

    def _finish(self, snapshot: ExtensionSnapshot) -> ExtensionSnapshot:
        if snapshot.failure:
            snapshot.status = "failed"
        elif snapshot.errors:
            snapshot.status = "partial"
        else:
            snapshot.status = "ok"
        stats = self.crawler.stats
        stats.inc_value(f"extensions/status/{snapshot.status}")
        if snapshot.failure:
            stats.inc_value(f"extensions/failure/{snapshot.failure.split(':', 1)[0]}")
        if snapshot.renamed_from:
            stats.inc_value("extensions/renamed")
        for metric, reason in snapshot.errors.items():
            stats.inc_value(f"extensions/errors/{metric}/{reason.split(':', 1)[0]}")
        for metric in snapshot.not_modified:
            stats.inc_value(f"extensions/not_modified/{metric}")
        return snapshot


def _splittable(error: FetchError) -> bool:
    if error.kind in SPLITTABLE:
        return True
    if error.kind == "http error":
        return (error.status or 0) >= 500
    if error.kind == "graphql error":
        detail = error.detail.lower()
        return "timeout" in detail or "something went wrong" in detail
    return False


def _json_or_none(response: Response) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        return None


def _message(response: Response) -> str:
    body = _json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:200]
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        return str(first.get("message") if isinstance(first, dict) else first)[:200]
    return ""
