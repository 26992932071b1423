"""Without a token: the REST-only mode within GitHub's 60 anonymous requests an hour."""
from __future__ import annotations

from tests.test_extensions_crawl import DCAT, repo


def test_without_a_token_every_metric_but_discussions_comes_from_rest(github_standin, run_extensions) -> None:
    github = github_standin([DCAT])
    run = run_extensions(github, repos=["ckan/ckanext-dcat"], token=None)
    item = run.item("ckan/ckanext-dcat")
    expected = {
        "status": "partial", "full_name": "ckan/ckanext-dcat", "repo_id": 101, "default_branch": "master",
        "stars": 190, "forks_count": 150, "total_releases": 3, "latest_release": "v1.8.0",
        "release_date": "2024-02-01T12:30:00Z", "open_issues": 3, "open_pull_requests": 5,
        "contributors_count": 59, "discussions": None, "discussions_enabled": True, "is_archived": False,
        "license": "AGPL-3.0", "language_stats": {"Python": 90.0, "HTML": 7.5, "JavaScript": 2.5},
        "repository_size": 2048, "last_update": "2024-05-01T10:00:00Z",
    }
    assert {k: item[k] for k in expected} == expected
    assert item["errors"] == {"discussions": "needs token: GitHub's REST API has no discussions count; "
                                             "set GITHUB_TOKEN to read it over GraphQL"}
    assert "REST-only mode" in run.log and "60 requests an hour" in run.log
    assert {e["identity"] for e in github.log()} == {"ip:127.0.0.1"}
    assert len(github.log()) == 6


def test_the_anonymous_budget_is_waited_for(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a"), repo(2, "ckanext-b")], anonymous_limit=8, window=3)
    run = run_extensions(github, repos=["ckan/ckanext-a", "ckan/ckanext-b"], token=None)
    assert [i["contributors_count"] for i in run.items] == [4, 4]
    assert "budget used up on anonymous access (60 requests an hour); waiting until" in run.log


def test_a_renamed_repository_over_rest(github_standin, run_extensions) -> None:
    github = github_standin([repo(5, "ckanext-new", owner="new-owner", previous_names=["ckan/ckanext-old"])])
    item = run_extensions(github, repos=["ckan/ckanext-old"], token=None).item("ckan/ckanext-old")
    assert (item["full_name"], item["renamed_from"], item["contributors_count"]) == (
        "new-owner/ckanext-new", "ckan/ckanext-old", 4)


def test_deleted_and_blocked_over_rest(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-gone", state="deleted"), repo(2, "ckanext-blocked", state="blocked")])
    run = run_extensions(github, repos=["ckan/ckanext-gone", "ckan/ckanext-blocked"], token=None)
    assert run.item("ckan/ckanext-gone")["failure"].startswith("not found: ")
    assert run.item("ckan/ckanext-blocked")["failure"].startswith("blocked: ")
