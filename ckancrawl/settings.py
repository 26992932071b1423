"""Scrapy settings for ckancrawl. Every setting is documented in README.md.

Secrets (CKAN_API_KEY, GITHUB_TOKEN) are read from the environment by the components
that need them and are never settings: settings are printed in logs.
"""
import os

BOT_NAME = "ckancrawl"
SPIDER_MODULES = ["ckancrawl.spiders"]
NEWSPIDER_MODULE = "ckancrawl.spiders"

# -- Where the work comes from --------------------------------------------------------
#: The CKAN Ecosystem Catalog; spiders read their work list from it.
CATALOG_URL = os.environ.get("CATALOG_URL", "https://catalog.civicdataecosystem.org")

# -- Identity and politeness -----------------------------------------------------------
#: Where site operators can read what this crawler is and whom to contact.
CKANCRAWL_CONTACT_URL = os.environ.get("CKANCRAWL_CONTACT_URL", "https://github.com/ckancrawl/ckancrawl")
USER_AGENT = f"ckancrawl/0.1 (+{CKANCRAWL_CONTACT_URL})"
# The Action API is not for robots.txt-governed page crawling: CKAN's default robots.txt
# disallows /api/ while the API is the documented way to read the portal.
ROBOTSTXT_OBEY = False
#: Many sites at once, few requests at once on each.
CONCURRENT_REQUESTS = 128
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_TIMEOUT = 15
#: Answers larger than this are cut off and recorded as "too large".
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
DOWNLOAD_WARNSIZE = 16 * 1024 * 1024
#: AutoThrottle adapts each site's delay to its latency. A low start delay matters:
#: a site is measured in a handful of requests, and the default 5 s would dominate.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.25
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
#: Probing callbacks hold their home page while they wait for API answers; allow many
#: sites in flight at once.
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 100 * 1024 * 1024
REACTOR_THREADPOOL_MAXSIZE = 20
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

# -- Site profiles ---------------------------------------------------------------------------
#: A Nominatim-compatible search endpoint for site coordinates; unset: no geocoding.
GEOCODER_URL = os.environ.get("GEOCODER_URL")
GEOCODER_CACHE_FILE = os.environ.get("GEOCODER_CACHE_FILE", ".services/geocoder-cache.json")
#: The geocoder's own slot: one request at a time, at most one per second.
DOWNLOAD_SLOTS = {"ckancrawl-geocoder": {"concurrency": 1, "delay": 1.0, "randomize_delay": False}}

# -- GitHub (extensions spider; tokens only from GITHUB_TOKEN / GITHUB_TOKENS) ----------------
GITHUB_API_URL = os.environ.get("GITHUB_API_URL", "https://api.github.com")
GITHUB_GRAPHQL_URL = os.environ.get("GITHUB_GRAPHQL_URL", "https://api.github.com/graphql")
#: Repositories per aliased GraphQL query (1-100; GitHub advises 25-50).
GITHUB_BATCH_SIZE = 40
#: GitHub requests in flight at once.
GITHUB_CONCURRENT_REQUESTS = 4
#: Send stored ETags (If-None-Match) and keep new ones: 304s cost no budget.
GITHUB_CONDITIONAL_REQUESTS = True
#: Where the ETag store lives (unset: .services/github-cache).
GITHUB_CACHE_DIR = os.environ.get("GITHUB_CACHE_DIR")
#: Longest wait for a rate-limit reset (s); waits per request.
GITHUB_RATE_LIMIT_MAX_WAIT = 3900
GITHUB_RATE_LIMIT_RETRIES = 3
#: First pause after a secondary limit without Retry-After (s, doubled), and attempts.
GITHUB_SECONDARY_BACKOFF = 60
GITHUB_SECONDARY_RETRIES = 5
#: First wait after a 202 (s, doubled), and attempts.
GITHUB_ACCEPTED_DELAY = 2
GITHUB_ACCEPTED_RETRIES = 5
#: GitHub requests per rolling minute per resource (secondary limit pacing; 0: off).
GITHUB_POINTS_PER_MINUTE = 800

# -- Reliability and security ---------------------------------------------------------------
#: URLs from catalog or portal data (site and portal pages, API calls, redirects) may
#: not reach loopback, private, link-local or metadata-service addresses: False (the
#: default) refuses them with the reason "blocked"; True allows every non-public
#: address but the metadata services; a list of networks (or "10.1.0.0/16,127.0.0.1/32")
#: allows exactly those. Also read from the ALLOW_PRIVATE_ADDRESSES environment
#: variable; the tests set it. The catalog, GITHUB_API_URL, GITHUB_GRAPHQL_URL,
#: GEOCODER_URL and SPLASH_URL are the operator's own configuration and not checked.
#: Resource downloads have their own RESOURCE_ALLOW_PRIVATE.
ALLOW_PRIVATE_ADDRESSES = os.environ.get("ALLOW_PRIVATE_ADDRESSES", False)
#: JOBDIR (``-s JOBDIR=DIR``; ./scripts/crawl keeps one in .services/jobs/<spider>):
#: the run timestamp is written there before the first request, so a run killed at any
#: moment resumes with it (./scripts/crawl <spider> --resume).

# -- Retries ------------------------------------------------------------------------------
RETRY_ENABLED = True
RETRY_TIMES = 2
#: A site that stays down is recorded with its reason; that is not an error of the crawl.
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
#: Retries of a request that timed out (at most RETRY_TIMES): none, a slow answer is
#: recorded as a timeout rather than waited for two more times.
RETRY_TIMEOUT_TIMES = 0
RETRY_BACKOFF_BASE = 0.5
RETRY_BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 120.0

DOWNLOADER_MIDDLEWARES = {
    "ckancrawl.middlewares.address_guard.AddressGuardMiddleware": 50,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "ckancrawl.middlewares.retry.BackoffRetryMiddleware": 550,
}

# -- Harvest ------------------------------------------------------------------------------------
#: Rows per package_search page (CKAN's maximum is 1000); the smallest page tried after
#: failures before falling back to package_list + package_show.
HARVEST_PAGE_SIZE = 1000
HARVEST_MIN_PAGE_SIZE = 10
#: Seconds taken off the last complete run's start for an incremental harvest.
HARVEST_SINCE_MARGIN = 3600
#: package_show calls in flight per portal (per-site limits still apply).
HARVEST_SHOW_CONCURRENCY = 8
#: The most id ranges one large portal is cut into, each a scheduled request that any
#: process of a distributed run may take; 0: 16 in distributed mode, else 1 (no split).
HARVEST_SPLIT = 0

# -- Resource facts (harvest: format, size and MD5 of each resource) -------------------------
#: Resource downloads stream through this handler (MD5 in constant memory, address checks
#: on every hop); every other request passes to Scrapy's own HTTP handler unchanged.
DOWNLOAD_HANDLERS = {
    "http": "ckancrawl.resources.download_handler.ResourceDownloadHandler",
    "https": "ckancrawl.resources.download_handler.ResourceDownloadHandler",
}
#: "none" (URL and declared format only), "head" (HEAD, else a 1-byte ranged GET) or
#: "full" (download, count and MD5).
RESOURCE_FACTS = os.environ.get("RESOURCE_FACTS", "head")
#: Largest body hashed; nothing is read past it.
RESOURCE_MAX_BYTES = 1024**3
#: Resource downloads in flight in all, and per host (slots "resource:<host>", apart
#: from the metadata crawl's).
RESOURCE_CONCURRENCY = 8
RESOURCE_CONCURRENCY_PER_HOST = 2
#: Seconds for the status line and for each silence in a body; total seconds per body.
RESOURCE_TIMEOUT = 30
RESOURCE_MAX_SECONDS = 1800
#: Resource URLs on loopback, private, link-local, multicast or metadata addresses are
#: refused; True (or a list of networks) allows them, for tests.
RESOURCE_ALLOW_PRIVATE = False
#: Hash bodies over 1 MiB in their own thread (off the event loop).
RESOURCE_HASH_IN_THREAD = True

# -- Storage --------------------------------------------------------------------------------
ITEM_PIPELINES = {
    "ckancrawl.pipelines.resource_facts.ResourceFactsPipeline": 100,
    "ckancrawl.pipelines.mongo_keys.MongoKeysPipeline": 200,
    "ckancrawl.pipelines.mongodb.MongoPipeline": 300,
    "ckancrawl.pipelines.catalog_sync.CatalogSyncPipeline": 400,
    "ckancrawl.pipelines.datastore_series.DatastoreSeriesPipeline": 500,
}
#: Unset: items are not stored in MongoDB (feed exports still work).
MONGODB_URI = os.environ.get("MONGODB_URI")
MONGODB_DATABASE = os.environ.get("MONGODB_DATABASE", "ckancrawl")
#: Documents per bulk write, and seconds between time-based flushes of a partial batch.
MONGODB_BATCH_SIZE = 100
MONGODB_FLUSH_INTERVAL = 5.0
#: Retries of a batch after a connection error (first wait, doubled each time, at most
#: 30 s) before it goes to the spill file.
MONGODB_RETRY_TIMES = 5
MONGODB_RETRY_BACKOFF = 1.0
MONGODB_SERVER_SELECTION_TIMEOUT = 5.0
#: Unwritten documents are kept here (JSONL) and written back when MongoDB answers.
MONGODB_SPILL_DIR = os.environ.get("MONGODB_SPILL_DIR", "mongodb-spill")

# -- Catalog writes (need CKAN_API_KEY in the environment; never a setting) -------------------
#: Seconds per catalog answer; retries of timeouts, refused connections, 5xx and 429
#: (first wait, doubled, capped, Retry-After honoured up to the cap).
CATALOG_TIMEOUT = 30.0
CATALOG_RETRY_TIMES = 3
CATALOG_RETRY_BACKOFF = 1.0
CATALOG_RETRY_BACKOFF_MAX = 30.0
#: Catalog write calls in flight at once, per pipeline.
CATALOG_MAX_CONCURRENT_WRITES = 2
#: Seconds calls fail at once after the catalog stopped answering.
CATALOG_DOWN_PAUSE = 60.0
#: Patch each item's catalog dataset (package_patch of the changed fields only).
CATALOG_SYNC_ENABLED = os.environ.get("CATALOG_SYNC_ENABLED", "").lower() in ("1", "true", "yes")
#: Log the changes that would be written; write nothing.
CATALOG_SYNC_DRY_RUN = False
#: Site profile fields (site_type, location, latitude, longitude, language, notes) are
#: guesses: written only where the catalog has no value, unless this is true.
CATALOG_PROFILE_OVERWRITE = False
#: Datasets synced at once; datasets read with one package_search; seconds an item waits
#: for others to share its read.
CATALOG_SYNC_CONCURRENCY = 4
CATALOG_SYNC_READ_BATCH = 50
CATALOG_SYNC_READ_WAIT = 0.5
#: Append each item to its datastore time series (datastore_upsert, method upsert).
DATASTORE_SERIES_ENABLED = os.environ.get("DATASTORE_SERIES_ENABLED", "").lower() in ("1", "true", "yes")
#: Create a missing series dataset, resource or table (in DATASTORE_SERIES_OWNER_ORG).
DATASTORE_SERIES_CREATE = False
DATASTORE_SERIES_OWNER_ORG = None
DATASTORE_SITES_DATASET = "ckan-sites-metadata"
DATASTORE_SITES_RESOURCE = "CKAN Sites Dynamic Metadata"
DATASTORE_EXTENSIONS_DATASET = "ckan-extensions-metadata"
DATASTORE_EXTENSIONS_RESOURCE = "CKAN Extensions Dynamic Metadata"
#: Rows per datastore_upsert, and seconds between time-based writes.
DATASTORE_BATCH_SIZE = 100
DATASTORE_FLUSH_INTERVAL = 10.0
#: Rows the catalog did not take wait here for the next run (or the replay command).
DATASTORE_PENDING_DIR = os.environ.get("DATASTORE_PENDING_DIR", "datastore-pending")

# -- Distributed crawls and rendering (add-ons; each does nothing until configured) ---------
ADDONS = {
    "ckancrawl.distributed.DistributedAddon": 100,
    "ckancrawl.rendering.RenderingAddon": 110,
}
#: Redis shared by the processes of one crawl (redis://host:6379/0, no password: that
#: comes from the CKANCRAWL_REDIS_PASSWORD environment variable); unset: one process.
CKANCRAWL_REDIS_URL = os.environ.get("CKANCRAWL_REDIS_URL")
#: Processes running the same spider under the same run name share one queue.
CKANCRAWL_REDIS_RUN = os.environ.get("CKANCRAWL_REDIS_RUN", "default")
#: A process takes work only while it holds fewer downloads plus callbacks than this
#: (0: CONCURRENT_REQUESTS).
CKANCRAWL_REDIS_LOCAL_LIMIT = 0
#: Seconds between heartbeats; a process silent for five beats counts as gone.
CKANCRAWL_REDIS_HEARTBEAT = 1.0
#: Seconds an interrupted run stays in Redis to be resumed.
CKANCRAWL_REDIS_KEEP = 86400
#: "playwright" (Debian's Chromium), "splash" (a Splash server at SPLASH_URL) or unset.
RENDERING_BACKEND = os.environ.get("RENDERING_BACKEND")
#: Seconds to wait after the page's load event; whole render timeout (None:
#: DOWNLOAD_TIMEOUT); pages rendered at once per process; the browser binary.
RENDERING_WAIT = 0.5
RENDERING_TIMEOUT = None
RENDERING_CONCURRENCY = 4
RENDERING_CHROMIUM = "/usr/bin/chromium"
SPLASH_URL = os.environ.get("SPLASH_URL")

# -- Job summary and alerts (ckancrawl/extensions/job_summary.py) ------------------------------
#: The project's crawl command: `scrapy crawl` exits with JOB_SUMMARY_EXIT_CODE when a
#: run is flagged.
COMMANDS_MODULE = "ckancrawl.commands"
#: JobSummary runs late (900) so it sees what other components count at close.
EXTENSIONS = {
    "ckancrawl.extensions.job_summary.JobSummary": 900,
    "ckancrawl.extensions.disk_space.DiskSpaceGuard": 500,
}
#: Stop the crawl (finish reason disk_full) while the disk of JOBDIR, MONGODB_SPILL_DIR,
#: DATASTORE_PENDING_DIR or GITHUB_CACHE_DIR still has this many MB free; 0: off.
DISK_MIN_FREE_MB = 100
#: Seconds between two looks at the free space.
DISK_CHECK_INTERVAL = 5.0
JOB_SUMMARY_ENABLED = True
#: Flag the run when the failed share of its sites/repositories/portals (or catalog
#: updates) is above this.
JOB_SUMMARY_FAILURE_THRESHOLD = 0.5
#: Exit status of a flagged `scrapy crawl`; 0 leaves the exit status alone.
JOB_SUMMARY_EXIT_CODE = 3
#: When to POST the summary to the webhook in the JOB_SUMMARY_WEBHOOK_URL environment
#: variable: "flagged", "always" or "never". Seconds per attempt (two attempts).
JOB_SUMMARY_ALERT = "flagged"
JOB_SUMMARY_WEBHOOK_TIMEOUT = 10.0

FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
