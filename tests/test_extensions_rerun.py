"""The weekly rerun: ETags kept between runs make unchanged repositories cheap.

GraphQL POSTs cannot be conditional, so a rerun pays the batch queries again; the
contributors requests go out with ``If-None-Match`` and come back 304, which GitHub does
not count. The ETag is only trusted while ``pushedAt`` is unchanged, because a 304 only
proves the first page's body unchanged, not the count in its Link header.
"""
from __future__ import annotations

import sqlite3
import subprocess

import pytest

from tests.fixtures.github import FAKE_TOKEN, SECOND_TOKEN

REPOS = [
    {"id": i, "owner": "ckan", "name": f"ckanext-r{i}", "contributors": 3 * i, "stars": i,
     "pushed_at": "2024-05-01T10:00:00Z"}
    for i in range(1, 11)
]
LISTED = [f"ckan/ckanext-r{i}" for i in range(1, 11)]


def charged(log: list[dict], resource: str) -> int:
    return sum(e["points"] for e in log if e["resource"] == resource)


def test_an_unchanged_rerun_is_answered_by_304s(github_standin, run_extensions) -> None:
    github = github_standin(REPOS)
    first = run_extensions(github, repos=LISTED)
    first_log = github.log()
    github.clear_log()
    second = run_extensions(github, repos=LISTED)
    second_log = github.log()
    strip = lambda items: sorted(({k: v for k, v in i.items() if k not in ("run_timestamp", "not_modified")} for i in items), key=str)
    assert strip(second.items) == strip(first.items)
    assert [e["status"] for e in second_log if "contributors" in e["path"]] == [304] * 10
    assert all(i["not_modified"] == ["contributors_count"] for i in second.items)
    assert charged(first_log, "core") == 10 and charged(second_log, "core") == 0
    assert charged(second_log, "graphql") == charged(first_log, "graphql") == 1


def test_a_rerun_sees_what_changed_in_graphql(github_standin, run_extensions) -> None:
    github = github_standin(REPOS)
    run_extensions(github, repos=LISTED)
    github.update_repo("ckan/ckanext-r1", stars=1000)
    second = run_extensions(github, repos=LISTED)
    assert second.item("ckan/ckanext-r1")["stars"] == 1000
    assert second.item("ckan/ckanext-r1")["not_modified"] == ["contributors_count"]


def test_after_a_push_the_count_is_read_again_even_if_the_page_looks_the_same(github_standin, run_extensions) -> None:
    github = github_standin(REPOS)
    run_extensions(github, repos=LISTED)
    # A new contributor with one commit lands at the end of the list: page 1 and its
    # ETag do not change, only the Link header's last page does.
    github.update_repo("ckan/ckanext-r2", anonymous_contributors=1, pushed_at="2024-06-01T08:00:00Z")
    github.clear_log()
    second = run_extensions(github, repos=LISTED)
    item = second.item("ckan/ckanext-r2")
    assert (item["contributors_count"], item["not_modified"]) == (7, [])
    sent = [e for e in github.log() if "ckanext-r2/contributors" in e["path"]]
    assert [(e["conditional"], e["status"]) for e in sent] == [(False, 200)]


def test_the_etags_are_kept_in_the_cache_directory(github_standin, run_extensions, tmp_path) -> None:
    github = github_standin(REPOS[:2])
    cache = tmp_path / "elsewhere"
    run_extensions(github, repos=LISTED[:2], settings={"GITHUB_CACHE_DIR": str(cache)})
    rows = sqlite3.connect(cache / "etags.sqlite").execute("SELECT key, value FROM etags ORDER BY key").fetchall()
    assert rows == [("contributors:1", '{"count": 3, "pushed_at": "2024-05-01T10:00:00Z"}'),
                    ("contributors:2", '{"count": 6, "pushed_at": "2024-05-01T10:00:00Z"}')]


def test_conditional_requests_can_be_switched_off(github_standin, run_extensions) -> None:
    github = github_standin(REPOS[:2])
    settings = {"GITHUB_CONDITIONAL_REQUESTS": "False"}
    run_extensions(github, repos=LISTED[:2], settings=settings)
    github.clear_log()
    run_extensions(github, repos=LISTED[:2], settings=settings)
    assert not any(e["conditional"] for e in github.log())


def test_with_several_tokens_each_repository_keeps_its_token(github_standin, run_extensions) -> None:
    github = github_standin(REPOS, tokens=(FAKE_TOKEN, SECOND_TOKEN))
    env = {"GITHUB_TOKENS": f"{FAKE_TOKEN},{SECOND_TOKEN}"}
    run_extensions(github, repos=LISTED, token=None, env=env)
    github.clear_log()
    run_extensions(github, repos=LISTED, token=None, env=env)
    statuses = [e["status"] for e in github.log() if "contributors" in e["path"]]
    assert statuses == [304] * 10
    assert {e["identity"] for e in github.log() if "contributors" in e["path"]} == {"user:1", "user:2"}


def test_another_token_gets_fresh_answers(github_standin, run_extensions) -> None:
    github = github_standin(REPOS[:3], tokens=(FAKE_TOKEN, SECOND_TOKEN))
    run_extensions(github, repos=LISTED[:3], token=FAKE_TOKEN)
    github.clear_log()
    second = run_extensions(github, repos=LISTED[:3], token=SECOND_TOKEN)
    assert [e["status"] for e in github.log() if "contributors" in e["path"]] == [200] * 3
    assert [i["contributors_count"] for i in sorted(second.items, key=lambda i: i["repo_id"])] == [3, 6, 9]


def test_items_stream_out_as_each_batch_answers(github_standin, run_extensions) -> None:
    github = github_standin(REPOS[:4])
    github.add_faults({"match": "ckanext-r3", "kind": "delay", "seconds": 2})  # the second batch is slow
    run = run_extensions(github, repos=LISTED[:4], settings={"GITHUB_BATCH_SIZE": "2"})
    lines = run.log.splitlines()
    scraped = [n for n, line in enumerate(lines) if "Scraped from" in line]
    batches = [n for n, line in enumerate(lines) if "Crawled (200) <POST" in line]
    assert len(scraped) == 4 and len(batches) == 2
    assert scraped[1] < batches[1]  # the first batch's items were out before the second batch answered


def test_a_crash_loses_at_most_the_batch_in_flight(github_standin, run_extensions, tmp_path) -> None:
    github = github_standin(REPOS[:4])
    github.add_faults({"match": "ckanext-r3", "kind": "delay", "seconds": 60})  # the second batch hangs
    with pytest.raises(subprocess.TimeoutExpired) as crashed:  # the crawl is killed, no clean shutdown
        run_extensions(github, repos=LISTED[:4], settings={"GITHUB_BATCH_SIZE": "2", "DOWNLOAD_TIMEOUT": "120"}, timeout=10)
    keys = [k for (k,) in sqlite3.connect(tmp_path / "github-cache" / "etags.sqlite").execute("SELECT key FROM etags")]
    assert sorted(keys) == ["contributors:1", "contributors:2"]
    log = crashed.value.stderr
    log = log.decode() if isinstance(log, bytes) else log
    assert log.count("Scraped from") == 2
