"""``scrapy crawl extensions`` against the GitHub stand-in: metrics, names, failures.

Every test runs the real spider in a subprocess (``run_extensions``) and reads its feed,
log and stats.
"""
from __future__ import annotations

import pytest

from tests.fixtures.github import FAKE_TOKEN

#: The repository the original pipeline got wrong in three ways.
DCAT = {
    "id": 101, "owner": "ckan", "name": "ckanext-dcat", "stars": 190, "forks": 150, "archived": False,
    "license": "AGPL-3.0", "size": 2048, "pushed_at": "2024-05-01T10:00:00Z", "default_branch": "master",
    "languages": {"Python": 90000, "HTML": 7500, "JavaScript": 2500},
    "open_issues": 3, "open_pulls": 5, "discussions": 2, "has_discussions": True,
    "contributors": 57, "anonymous_contributors": 2,
    "releases": [
        # Listed first (newest) but a pre-release: not the latest.
        {"tag": "v2.0.0rc1", "created_at": "2024-03-01T00:00:00Z", "published_at": "2024-03-02T00:00:00Z", "prerelease": True},
        # The latest: drafted in January 2023, published a year later.
        {"tag": "v1.8.0", "created_at": "2023-01-10T00:00:00Z", "published_at": "2024-02-01T12:30:00Z"},
        {"tag": "v1.7.0", "created_at": "2022-06-01T00:00:00Z", "published_at": "2022-06-01T00:00:00Z"},
    ],
}


def repo(id_: int, name: str, **fields) -> dict:
    return {"id": id_, "owner": "ckan", "name": name, "contributors": 4, **fields}


def test_every_metric_of_a_repository_exactly(github_standin, run_extensions) -> None:
    github = github_standin([DCAT])
    run = run_extensions(github, repos=["https://github.com/ckan/ckanext-dcat"])
    assert run.returncode == 0, run.log[-3000:]
    item = run.item("ckan/ckanext-dcat")
    assert {k: v for k, v in item.items() if k != "run_timestamp"} == {
        "extension": "ckan/ckanext-dcat", "source": "repos", "listed_url": "https://github.com/ckan/ckanext-dcat",
        "catalog_dataset": None, "catalog_dataset_id": None, "repository": "ckan/ckanext-dcat",
        "status": "ok", "failure": None, "full_name": "ckan/ckanext-dcat", "renamed_from": None, "repo_id": 101,
        "url": "https://github.com/ckan/ckanext-dcat", "default_branch": "master", "stars": 190,
        "forks_count": 150, "total_releases": 3, "latest_release": "v1.8.0", "release_date": "2024-02-01T12:30:00Z",
        "open_issues": 3, "open_pull_requests": 5, "contributors_count": 59, "discussions": 2,
        "discussions_enabled": True, "is_archived": False, "license": "AGPL-3.0",
        "language_stats": {"Python": 90.0, "HTML": 7.5, "JavaScript": 2.5}, "repository_size": 2048,
        "last_update": "2024-05-01T10:00:00Z", "errors": {}, "not_modified": [],
    }


def test_the_latest_release_is_githubs_latest_not_the_first_listed(github_standin, run_extensions) -> None:
    run = run_extensions(github_standin([DCAT]), repos=["ckan/ckanext-dcat"])
    assert run.item("ckan/ckanext-dcat")["latest_release"] == "v1.8.0"  # the original took v2.0.0rc1


def test_the_release_date_is_the_publication_not_the_creation(github_standin, run_extensions) -> None:
    run = run_extensions(github_standin([DCAT]), repos=["ckan/ckanext-dcat"])
    assert run.item("ckan/ckanext-dcat")["release_date"] == "2024-02-01T12:30:00Z"  # not 2023-01-10


def test_open_pull_requests_do_not_count_as_issues(github_standin, run_extensions) -> None:
    run = run_extensions(github_standin([DCAT]), repos=["ckan/ckanext-dcat"])
    item = run.item("ckan/ckanext-dcat")
    assert (item["open_issues"], item["open_pull_requests"]) == (3, 5)  # REST says 8 open issues


def test_about_one_request_per_repository(github_standin, run_extensions) -> None:
    repos = [repo(i, f"ckanext-r{i}", contributors=i * 7) for i in range(1, 81)]
    github = github_standin(repos)
    run = run_extensions(github, repos=[f"ckan/ckanext-r{i}" for i in range(1, 81)])
    assert [item["contributors_count"] for item in sorted(run.items, key=lambda i: i["repo_id"])] == [
        i * 7 for i in range(1, 81)]
    log = github.log()
    assert sum(e["path"] == "/graphql" for e in log) == 2  # batches of 40
    assert len(log) == 82


def test_a_renamed_repository_records_both_names(github_standin, run_extensions) -> None:
    github = github_standin([repo(5, "ckanext-new", owner="new-owner", previous_names=["ckan/ckanext-old"])])
    run = run_extensions(github, repos=["https://github.com/ckan/ckanext-old"])
    item = run.item("ckan/ckanext-old")
    assert (item["repository"], item["full_name"], item["renamed_from"], item["repo_id"]) == (
        "ckan/ckanext-old", "new-owner/ckanext-new", "ckan/ckanext-old", 5)
    assert item["status"] == "ok" and item["contributors_count"] == 4
    assert not any(e["status"] == 301 for e in github.log())  # the contributors request used the new name


def test_a_move_graphql_does_not_follow_is_found_through_the_rest_redirect(github_standin, run_extensions) -> None:
    moved = repo(6, "ckanext-moved", owner="elsewhere", previous_names=["ckan/ckanext-was"], graphql_follows_rename=False)
    github = github_standin([moved])
    run = run_extensions(github, repos=["ckan/ckanext-was"])
    item = run.item("ckan/ckanext-was")
    assert (item["status"], item["full_name"], item["renamed_from"]) == ("ok", "elsewhere/ckanext-moved", "ckan/ckanext-was")
    assert [e["status"] for e in github.log() if e["path"].startswith(("/repos/ckan/ckanext-was", "/repositories/6"))] == [301, 200]


def test_a_deleted_repository_is_recorded_as_not_found(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-gone", state="deleted"), repo(2, "ckanext-fine")])
    run = run_extensions(github, repos=["ckan/ckanext-gone", "ckan/ckanext-fine"])
    gone = run.item("ckan/ckanext-gone")
    assert gone["status"] == "failed"
    assert gone["failure"] == "not found: GitHub has no repository ckan/ckanext-gone (deleted, made private or never existed)"
    assert gone["stars"] is None and gone["contributors_count"] is None
    assert run.item("ckan/ckanext-fine")["status"] == "ok"


def test_a_blocked_repository_is_recorded_with_its_reason(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-blocked", state="blocked")])
    run = run_extensions(github, repos=["ckan/ckanext-blocked"])
    assert run.item("ckan/ckanext-blocked")["failure"] == (
        "blocked: GitHub blocks access to ckan/ckanext-blocked (dmca since 2021-04-22T17:53:56Z)")
    assert run.stats["extensions/failure/blocked"] == 1


def test_too_many_contributors_is_unknown_never_zero(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-huge", contributors_too_large=True, stars=9)])
    item = run_extensions(github, repos=["ckan/ckanext-huge"]).item("ckan/ckanext-huge")
    assert item["contributors_count"] is None
    assert item["errors"]["contributors_count"].startswith("too large: GitHub does not list the contributors")
    assert (item["status"], item["stars"]) == ("partial", 9)


def test_an_empty_repository_has_zero_contributors_without_asking(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-empty", default_branch=None, contributors=0)])
    item = run_extensions(github, repos=["ckan/ckanext-empty"]).item("ckan/ckanext-empty")
    assert (item["contributors_count"], item["default_branch"], item["status"]) == (0, None, "ok")
    assert [e["path"] for e in github.log()] == ["/graphql"]


def test_a_failed_field_leaves_only_that_metric_unknown(github_standin, run_extensions) -> None:
    github = github_standin([
        repo(1, "ckanext-flaky", stars=3, graphql_field_errors={"discussions": "Something went wrong"}),
        repo(2, "ckanext-fine", stars=4),
    ])
    run = run_extensions(github, repos=["ckan/ckanext-flaky", "ckan/ckanext-fine"])
    flaky = run.item("ckan/ckanext-flaky")
    assert (flaky["status"], flaky["stars"], flaky["contributors_count"]) == ("partial", 3, 4)
    assert flaky["discussions"] is None and flaky["discussions_enabled"] is None
    assert flaky["errors"] == {"discussions": "graphql error: Something went wrong"}
    assert run.item("ckan/ckanext-fine")["status"] == "ok"


def test_a_batch_that_times_out_is_split_until_the_culprit_is_alone(github_standin, run_extensions) -> None:
    repos = [repo(i, f"ckanext-r{i}") for i in range(1, 9)]
    github = github_standin(repos)
    github.add_faults({"match": "ckanext-r6\"", "kind": "server_error", "status": 502, "times": -1})
    run = run_extensions(github, repos=[f"ckan/ckanext-r{i}" for i in range(1, 9)],
                         settings={"GITHUB_BATCH_SIZE": "8", "RETRY_TIMES": "0"})
    assert {i["extension"]: i["status"] for i in run.items} == {
        f"ckan/ckanext-r{i}": ("failed" if i == 6 else "ok") for i in range(1, 9)}
    assert run.item("ckan/ckanext-r6")["failure"].startswith("http error: GraphQL answered HTTP 502 (Something went wrong")
    assert run.stats["extensions/batch_splits"] == 3  # 8 -> 4 -> 2 -> 1


def test_five_hundreds_are_retried(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a")])
    github.add_faults({"match": "graphql", "kind": "server_error", "status": 502},
                      {"match": "contributors", "kind": "server_error", "status": 503})
    item = run_extensions(github, repos=["ckan/ckanext-a"]).item("ckan/ckanext-a")
    assert (item["status"], item["contributors_count"]) == ("ok", 4)


def test_a_202_is_asked_again(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a")])
    github.add_faults({"match": "contributors", "kind": "accepted", "times": 2})
    run = run_extensions(github, repos=["ckan/ckanext-a"])
    assert run.item("ckan/ckanext-a")["contributors_count"] == 4
    assert run.stats["github/accepted/retries"] == 2


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "secondary", "retry_after": 1},
        {"kind": "secondary"},
        {"kind": "secondary", "status": 429},
    ],
    ids=["403-retry-after", "403-without-retry-after", "429"],
)
def test_secondary_limits_pause_and_resume(github_standin, run_extensions, fault) -> None:
    github = github_standin([repo(1, "ckanext-a")])
    github.add_faults({"match": "contributors", **fault})
    run = run_extensions(github, repos=["ckan/ckanext-a"])
    assert run.item("ckan/ckanext-a")["contributors_count"] == 4
    assert run.stats["github/secondary_limit/pauses"] == 1
    assert "GitHub secondary rate limit" in run.log


def test_a_spent_budget_is_waited_for(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a"), repo(2, "ckanext-b")])
    github.add_faults({"match": "contributors", "kind": "primary", "reset_in": 2})
    run = run_extensions(github, repos=["ckan/ckanext-a", "ckan/ckanext-b"])
    assert [i["contributors_count"] for i in run.items] == [4, 4]
    assert "GitHub core budget used up on the token; waiting until" in run.log
    assert run.stats["github/rate_limit/waits"] >= 1


def test_a_spent_graphql_budget_is_waited_for(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a")])
    github.add_faults({"match": "graphql", "kind": "primary", "reset_in": 2})
    item = run_extensions(github, repos=["ckan/ckanext-a"]).item("ckan/ckanext-a")
    assert (item["status"], item["stars"]) == ("ok", 0)


def test_a_reset_too_far_away_is_recorded_as_rate_limited(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a", stars=5)])
    github.add_faults({"match": "contributors", "kind": "primary", "reset_in": 3600})
    item = run_extensions(github, repos=["ckan/ckanext-a"],
                          settings={"GITHUB_RATE_LIMIT_MAX_WAIT": "5"}).item("ckan/ckanext-a")
    assert item["contributors_count"] is None and item["stars"] == 5
    assert item["errors"]["contributors_count"].startswith("rate limited: the GitHub core budget is used up until")


def test_tokens_rotate_when_one_is_spent(github_standin, run_extensions) -> None:
    second = "ghp_SECONDfake1111secretSECRET0987654321zz"
    github = github_standin([repo(i, f"ckanext-r{i}") for i in range(1, 5)], tokens=(FAKE_TOKEN, second))
    github.set_budget(FAKE_TOKEN, "core", 0, reset_in=3600)
    run = run_extensions(github, repos=[f"ckan/ckanext-r{i}" for i in range(1, 5)],
                         env={"GITHUB_TOKENS": f"{FAKE_TOKEN},{second}"})
    assert [i["contributors_count"] for i in run.items] == [4, 4, 4, 4]
    rest = [e for e in github.log() if e["resource"] == "core"]
    assert {e["identity"] for e in rest if e["status"] == 200} == {"user:2"}


def test_a_refused_token_leaves_the_rotation(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a")], tokens=(FAKE_TOKEN,))
    run = run_extensions(github, repos=["ckan/ckanext-a"], token=None,
                         env={"GITHUB_TOKENS": f"ghp_revoked_token_xyz,{FAKE_TOKEN}"})
    assert run.item("ckan/ckanext-a")["status"] == "ok"
    assert "GitHub refused token #1 (HTTP 401 Bad credentials); 1 other token(s) left" in run.log
    assert "ghp_revoked_token_xyz" not in run.log


def test_a_listing_that_is_not_on_github_says_where_it_is(github_standin, run_extensions) -> None:
    run = run_extensions(github_standin([]), repos=["https://gitlab.com/group/ckanext-gl", "not a repository"])
    assert run.item("https://gitlab.com/group/ckanext-gl")["failure"].startswith("not github: ")
    assert run.item("not a repository")["failure"] == "bad url: 'not a repository' is not a GitHub repository URL or owner/name"


def test_a_repository_listed_twice_is_measured_once(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a")])
    run = run_extensions(github, repos=["ckan/ckanext-a", "https://github.com/CKAN/ckanext-a.git"])
    assert len(run.items) == 1 and run.stats["extensions/duplicate_listing"] == 1


def test_one_repository_by_argument(github_standin, run_extensions) -> None:
    github = github_standin([repo(1, "ckanext-a")])
    run = run_extensions(github, args={"repo": "https://github.com/ckan/ckanext-a"})
    assert run.item("ckan/ckanext-a")["source"] == "repo"


def test_wrong_arguments_fail_fast(run_extensions) -> None:
    run = run_extensions(None, args={"repo": "https://example.org/x", "repos": "/nonexistent"})
    assert run.returncode != 0 or not run.items
    assert "give only one of -a catalog, -a repos, -a repo" in run.log


def test_the_token_never_leaks(github_standin, run_extensions, tmp_path) -> None:
    github = github_standin([DCAT, repo(2, "ckanext-gone", state="deleted")])
    github.add_faults({"match": "contributors", "kind": "secondary", "retry_after": 1})
    run = run_extensions(github, repos=["ckan/ckanext-dcat", "ckan/ckanext-gone", "ckan/ckanext-missing"],
                         settings={"LOG_LEVEL": "DEBUG", "JOBDIR": str(tmp_path / "job")})
    texts = [run.log, str(run.items), str(run.stats)]
    files = [p for p in run.directory.rglob("*") if p.is_file()]
    assert any("job" in p.parts for p in files) and any(p.name == "etags.sqlite" for p in files)
    texts += [p.read_bytes().decode("latin-1") for p in files]
    assert run.items and all(FAKE_TOKEN not in text for text in texts)
    assert all(FAKE_TOKEN[4:20] not in text for text in texts)


def test_no_more_than_the_configured_requests_in_flight(github_standin, run_extensions) -> None:
    github = github_standin([repo(i, f"ckanext-r{i}") for i in range(1, 41)], latency=0.1)
    run = run_extensions(github, repos=[f"ckan/ckanext-r{i}" for i in range(1, 41)],
                         settings={"GITHUB_CONCURRENT_REQUESTS": "3"})
    assert len(run.items) == 40
    starts = sorted(e["t"] for e in github.log())
    assert max(sum(1 for s in starts if s <= t < s + 0.1) for t in starts) <= 3
    assert not any(e["fault"] for e in github.log())


def test_a_refused_token_fails_the_run_with_reasons_not_zeros(github_standin, run_extensions) -> None:
    github = github_standin([repo(i, f"ckanext-r{i}") for i in range(1, 4)], tokens=(FAKE_TOKEN,))
    run = run_extensions(github, repos=[f"ckan/ckanext-r{i}" for i in range(1, 4)], token="ghp_revoked_token_xyz",
                         settings={"GITHUB_BATCH_SIZE": "1", "GITHUB_CONCURRENT_REQUESTS": "1"})
    assert {i["failure"].split(":", 1)[0] for i in run.items} == {"http error"}
    assert sum("GitHub refused all 1 token(s)" in i["failure"] for i in run.items) == 2
    assert all(i["stars"] is None for i in run.items)
    assert "GitHub refused token #1 (HTTP 401 Bad credentials); 0 other token(s) left" in run.log
    assert sum(e["status"] == 401 for e in github.log()) == 1  # no batch splitting, no more tries


def test_a_batch_that_is_rate_limited_for_good_is_not_split(github_standin, run_extensions) -> None:
    github = github_standin([repo(i, f"ckanext-r{i}") for i in range(1, 5)])
    github.add_faults({"match": "graphql", "kind": "primary", "reset_in": 7200})
    run = run_extensions(github, repos=[f"ckan/ckanext-r{i}" for i in range(1, 5)],
                         settings={"GITHUB_RATE_LIMIT_MAX_WAIT": "5"})
    assert {i["failure"].split(":", 1)[0] for i in run.items} == {"rate limited"}
    assert "extensions/batch_splits" not in run.stats
