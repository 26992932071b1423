"""Typed items. Every component reads them through ItemAdapter.

Storage hints are class attributes (not fields) so they never reach feeds:
- ``mongo_collection``: the history collection; ``<name>_latest`` keeps the newest
  document per entity.
- ``mongo_key``: the fields that identify one document in the history collection. A
  rerun or a resumed run writes the same key again, so nothing is duplicated.
- ``entity_key``: the fields that identify the entity across runs (the latest view).

Unknown values are ``None``, never 0; ``errors`` says why, per endpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class SiteSnapshot:
    """One CKAN site as measured by one run of the ``sites`` spider."""

    mongo_collection: ClassVar[str] = "sites"
    mongo_key: ClassVar[tuple[str, ...]] = ("site", "run_timestamp")
    entity_key: ClassVar[tuple[str, ...]] = ("site",)

    #: Stable identity of the site: the catalog dataset name, else the listed URL.
    site: str
    #: Start of the run (UTC, ISO 8601), shared by every item of the run, kept on resume.
    run_timestamp: str
    #: Where the site came from: "catalog", "urls" (a file) or "url" (one argument).
    source: str
    #: The URL as listed (catalog dataset, file line or argument); None if there was none.
    listed_url: str | None = None
    #: Catalog dataset name and id when discovered from the catalog.
    catalog_dataset: str | None = None
    catalog_dataset_id: str | None = None
    #: "ok" (every probe answered), "partial" (some did) or "failed" (no Action API).
    status: str = "failed"
    #: Why the site as a whole could not be measured (no URL, not CKAN, DNS...).
    failure: str | None = None
    #: The home page's URL after redirects; None if it could not be fetched.
    home_url: str | None = None
    #: The Action API base that answered, after redirects, ending in "/action/".
    api_url: str | None = None
    ckan_version: str | None = None
    #: Sorted plugin names; None when unknown.
    extensions: list[str] | None = None
    site_title: str | None = None
    site_url: str | None = None
    locale_default: str | None = None
    num_datasets: int | None = None
    #: Which call gave num_datasets: "package_search" or "package_list".
    num_datasets_method: str | None = None
    num_organizations: int | None = None
    num_groups: int | None = None
    #: From the home page: its name (og:site_name or <title>), meta description and
    #: language (html lang, Content-Language); None when absent or not HTML.
    home_title: str | None = None
    home_description: str | None = None
    language: str | None = None
    #: By the domain rules of ckancrawl/site_profile.py.
    site_type: str | None = None
    #: ISO 3166-1 alpha-2 code from the country-code TLD ("EU" for .eu).
    country: str | None = None
    country_name: str | None = None
    #: The place that was geocoded (the catalog's location, else the country) and its
    #: coordinates; None unless GEOCODER_URL is set and the place was found.
    location: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    #: Failed probes: endpoint name -> reason a person understands.
    errors: dict[str, str] = field(default_factory=dict)
    #: status_show's result as the site returned it (keys sanitized before storage).
    status_show: dict[str, Any] | None = None


@dataclass
class ExtensionSnapshot:
    """One CKAN extension's GitHub repository as measured by one run of ``extensions``.

    Metric names are those of the catalog's ``extension`` schema, so the catalog sync can
    patch them as they are. A metric that could not be read is None and ``errors`` says
    why; a metric that is known to be empty is 0 (no releases, no open issues) or None
    with no error (no license, no latest release).
    """

    mongo_collection: ClassVar[str] = "extensions"
    mongo_key: ClassVar[tuple[str, ...]] = ("extension", "run_timestamp")
    entity_key: ClassVar[tuple[str, ...]] = ("extension",)

    #: Stable identity: the catalog dataset name, else the listed repository (owner/name).
    extension: str
    #: Start of the run (UTC, ISO 8601), shared by every item of the run, kept on resume.
    run_timestamp: str
    #: Where the extension came from: "catalog", "repos" (a file) or "repo" (one argument).
    source: str
    #: The URL or name as listed; None if the catalog dataset had none.
    listed_url: str | None = None
    catalog_dataset: str | None = None
    catalog_dataset_id: str | None = None
    #: The listed repository, normalised to "owner/name" (case as listed).
    repository: str | None = None
    #: "ok" (every metric read), "partial" (some unknown, see errors) or "failed".
    status: str = "failed"
    #: Why the repository could not be measured at all: "<kind>: <detail>" (no url, not
    #: github, not found, blocked, rate limited, ...).
    failure: str | None = None
    #: The repository's current "owner/name" on GitHub (differs after a rename/transfer).
    full_name: str | None = None
    #: The listed "owner/name" when GitHub answered under another name, else None.
    renamed_from: str | None = None
    #: GitHub's numeric repository id: stable across renames and transfers.
    repo_id: int | None = None
    #: https://github.com/<full_name>
    url: str | None = None
    default_branch: str | None = None
    stars: int | None = None
    forks_count: int | None = None
    #: Published releases (GitHub's own count).
    total_releases: int | None = None
    #: Tag of the release GitHub marks "latest" (skips drafts and pre-releases).
    latest_release: str | None = None
    #: Publication time of that release (ISO 8601), not its creation time.
    release_date: str | None = None
    #: Open issues, pull requests excluded.
    open_issues: int | None = None
    open_pull_requests: int | None = None
    #: Contributors including anonymous ones (commit authors without a GitHub account).
    contributors_count: int | None = None
    #: Number of discussions; ``discussions_enabled`` says whether the tab is on.
    discussions: int | None = None
    discussions_enabled: bool | None = None
    is_archived: bool | None = None
    #: SPDX id ("MIT", "Apache-2.0"; "NOASSERTION" for an unrecognised licence).
    license: str | None = None
    #: Share of the code per language in percent (one decimal), largest first.
    language_stats: dict[str, float] | None = None
    #: Repository size in kilobytes, as GitHub reports it.
    repository_size: int | None = None
    #: Last push to any branch (ISO 8601).
    last_update: str | None = None
    #: Unknown metrics: metric name -> reason a person understands.
    errors: dict[str, str] = field(default_factory=dict)
    #: Metrics confirmed unchanged since the previous run by a conditional request (304).
    not_modified: list[str] = field(default_factory=list)


@dataclass
class HarvestedDataset:
    """One dataset of a CKAN portal as the ``harvest`` spider fetched it.

    Stored in the raw metadata repository (ckancrawl/pipelines/raw_repository.py):
    one current document per (portal, dataset_id) in ``raw_datasets``; a document whose
    content_hash (or resource facts) changed moves to ``raw_datasets_history`` first.
    """

    mongo_collection: ClassVar[str] = "raw_datasets"
    mongo_key: ClassVar[tuple[str, ...]] = ("portal", "dataset_id")
    entity_key: ClassVar[tuple[str, ...]] = ()
    #: How MongoPipeline writes it (see ckancrawl/pipelines/mongodb.py, strategies).
    mongo_strategy: ClassVar[str] = "ckancrawl.pipelines.raw_repository.RawDatasetWrites"

    #: The portal as given to the spider, normalised (ckancrawl.site_urls.normalize_site_url).
    portal: str
    #: CKAN's dataset id (a UUID on every CKAN version); stable across renames.
    dataset_id: str
    #: The dataset's name (URL slug) at harvest time.
    name: str | None
    #: The portal's ``metadata_modified`` as it sent it (naive UTC ISO 8601, e.g.
    #: "2024-05-02T10:11:12.345678"); None when the portal sent none.
    metadata_modified: str | None
    #: The dataset dict exactly as the portal returned it (keys sanitized before storage).
    raw: dict[str, Any]
    #: "sha256:<hex>" of the canonical JSON of ``raw`` (sorted keys, UTF-8).
    content_hash: str
    #: The run timestamp (UTC, ISO 8601), shared by every item of the run.
    harvested_at: str
    #: Which call returned ``raw``: "package_search" or "package_show".
    fetched_with: str = "package_search"
    #: One dict per resource, filled by the resource facts pipeline (format, size,
    #: MD5...); None when no facts were gathered.
    resource_facts: list[dict[str, Any]] | None = None


@dataclass
class HarvestRun:
    """What one run of the ``harvest`` spider did on one portal; yielded after its datasets.

    ``complete`` is True only when every dataset id of the portal was listed without
    error; only then are ``deleted_ids`` (stored datasets the portal no longer has)
    marked deleted in the repository, and only a complete run is the starting point of
    the next incremental harvest.
    """

    mongo_collection: ClassVar[str] = "harvest_runs"
    mongo_key: ClassVar[tuple[str, ...]] = ("portal", "run_timestamp")
    entity_key: ClassVar[tuple[str, ...]] = ()
    mongo_strategy: ClassVar[str] = "ckancrawl.pipelines.raw_repository.HarvestRunWrites"

    portal: str
    run_timestamp: str
    #: The Action API base that answered ("<root>/api/3/action/"); None if none did.
    api_url: str | None = None
    #: "search" (package_search pages), "show" (package_list + package_show), or
    #: "search+show" (search failed part-way and the rest came from package_show).
    method: str | None = None
    #: Incremental lower bound on metadata_modified (UTC ISO 8601); None for a full harvest.
    since: str | None = None
    #: Where ``since`` came from: "argument", "last complete harvest" or None.
    since_source: str | None = None
    complete: bool = False
    #: Datasets yielded by this run (new, changed and unchanged alike).
    datasets: int = 0
    #: Dataset ids the portal listed (all of them, also in an incremental run); None if unknown.
    listed: int | None = None
    #: What the portal's first package_search page said it holds; None if not asked.
    reported_count: int | None = None
    #: Stored, not yet deleted datasets the portal no longer lists; None if not known
    #: (incomplete run, or no repository to compare with).
    deleted_ids: list[str] | None = None
    #: Why the run is not complete, or what went wrong on the way ("<kind>: <detail>").
    errors: list[str] = field(default_factory=list)
    #: Pages of package_search that failed and were asked again with fewer rows.
    page_shrinks: int = 0
    #: Id ranges the portal was harvested in (HARVEST_SPLIT); 1 when it was not split.
    split: int = 1
    finished_at: str | None = None
