"""What the scrapyd client lets through to scrapyd: job ids, names, arguments, settings."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ckancrawl.scrapyd.jobs import SPIDER_ARGUMENTS, InvalidJob, check_job_id, job_request
from tests.crawl import PROJECT_ROOT


@pytest.mark.parametrize("job_id", ["0123456789abcdef0123456789abcdef", "sites-20261129T0300Z", "harvest_demo-1"])
def test_scrapyd_and_schedule_job_ids_are_accepted(job_id):
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    "job_id", ["../x", "..", "a/b", "/etc/passwd", "-starts-with-dash", ".hidden", "a b", "a\nb", "abc\n", "", "x" * 129, "é"]
)
def test_job_ids_that_would_break_a_scrapyd_slot_are_refused(job_id):
    with pytest.raises(InvalidJob, match="job id"):
        check_job_id(job_id)


def test_a_sites_job_with_a_catalog_is_accepted_as_given():
    job = job_request("ckancrawl", "sites", {"catalog": "https://catalog.civicdataecosystem.org"}, {"DOWNLOAD_TIMEOUT": "20"})
    assert job.form() == [
        ("project", "ckancrawl"),
        ("spider", "sites"),
        ("setting", "DOWNLOAD_TIMEOUT=20"),
        ("catalog", "https://catalog.civicdataecosystem.org"),
    ]


def test_unknown_arguments_are_refused_with_the_ones_the_spider_takes():
    with pytest.raises(InvalidJob, match=r"takes no argument 'portal'; it takes: catalog, run_timestamp, url, urls"):
        job_request("ckancrawl", "sites", {"portal": "https://demo.ckan.org"})


def test_two_sources_at_once_are_refused():
    with pytest.raises(InvalidJob, match="give only one of catalog, urls, url"):
        job_request("ckancrawl", "sites", {"catalog": "https://a.example", "url": "https://b.example"})


def test_a_harvest_needs_a_portal():
    with pytest.raises(InvalidJob, match="needs one of: portal, portals"):
        job_request("ckancrawl", "harvest", {})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"portal": "ftp://files.example.org"}, "not an http"),
        ({"portal": "https://user:secret@demo.ckan.org"}, "carries credentials"),
        ({"portals": "portals.txt"}, "absolute path"),
        ({"portals": "/srv/../etc/portals.txt"}, "'..'"),
        ({"portal": "https://demo.ckan.org", "since": "last week"}, "ISO 8601"),
        ({"portal": "https://demo.ckan.org", "method": "scrape"}, "one of search, show"),
        ({"portal": "https://demo.ckan.org", "method": "show", "since": "2025-01-01"}, "since= does not apply"),
        ({"portal": "https://demo.ckan.org\n"}, "control character"),
        ({"portal": "https://demo.ckan.org", "_job": "x"}, "not allowed"),
        ({"portal": "https://demo.ckan.org", "jobid": "x"}, "not allowed"),
    ],
)
def test_bad_harvest_arguments_are_refused_before_scrapyd_sees_them(args, message):
    with pytest.raises(InvalidJob, match=message):
        job_request("ckancrawl", "harvest", args)


@pytest.mark.parametrize(
    "setting",
    [
        {"GITHUB_TOKEN": "ghp_x"},
        {"CKAN_API_KEY": "k"},
        {"MONGODB_URI": "mongodb://db:27017/"},
        {"JOB_SUMMARY_WEBHOOK_URL": "https://hooks.example/x"},
        {"SOME_PROXY": "http://user:pass@proxy:3128"},
    ],
)
def test_secrets_are_refused_as_per_job_settings(setting):
    with pytest.raises(InvalidJob, match="looks like a secret: set it in the environment of the scrapyd process"):
        job_request("ckancrawl", "sites", {}, setting)


@pytest.mark.parametrize(("kind", "values"), [("project", {"project": "../eggs"}), ("spider", {"spider": "sites;rm"})])
def test_project_and_spider_names_are_checked(kind, values):
    with pytest.raises(InvalidJob, match=f"{kind} name"):
        job_request(**{"project": "ckancrawl", "spider": "sites", **values})


def test_every_spider_of_the_project_has_argument_rules():
    listed = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed, "scrapy list found no spider"
    assert set(listed) <= set(SPIDER_ARGUMENTS), "add the new spider's arguments to ckancrawl/scrapyd/jobs.py"
