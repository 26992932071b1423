"""The batch query and the reading of its answers (ckancrawl.github.graphql_query, .metrics)."""
from __future__ import annotations

import json

import pytest

from ckancrawl.failures import FetchError
from ckancrawl.github.graphql_query import build_query, request_body, split_answer
from ckancrawl.github.metrics import count_from_link, from_graphql, from_rest_repository, language_shares
from ckancrawl.github.repo_urls import RepoRef
from tests.github_standin.graphql_executor import cost, validate
from tests.github_standin.graphql_parser import parse

NODE = {
    "databaseId": 42, "nameWithOwner": "ckan/ckanext-dcat", "url": "https://github.com/ckan/ckanext-dcat",
    "defaultBranchRef": {"name": "master"}, "stargazerCount": 190, "forkCount": 150, "isArchived": False,
    "licenseInfo": {"spdxId": "AGPL-3.0"}, "diskUsage": 2048, "pushedAt": "2024-05-01T10:00:00Z",
    "languages": {"totalSize": 1000, "edges": [{"size": 900, "node": {"name": "Python"}},
                                               {"size": 100, "node": {"name": "HTML"}}]},
    "releases": {"totalCount": 12}, "latestRelease": {"tagName": "v1.8.0", "publishedAt": "2024-02-01T00:00:00Z"},
    "issues": {"totalCount": 3}, "pullRequests": {"totalCount": 5}, "hasDiscussionsEnabled": True,
    "discussions": {"totalCount": 2},
}


def test_one_alias_per_repository_in_order() -> None:
    query = build_query([RepoRef("a", "one"), RepoRef("b", "two")])
    assert 'r0: repository(owner: "a", name: "one")' in query
    assert 'r1: repository(owner: "b", name: "two")' in query


def test_the_query_is_valid_against_githubs_schema() -> None:
    document = parse(build_query([RepoRef("ckan", f"ckanext-{i}") for i in range(40)]))
    validate(document, "query ExtensionMetrics")


def test_forty_repositories_cost_two_points() -> None:
    document = parse(build_query([RepoRef("ckan", f"ckanext-{i}") for i in range(40)]))
    assert cost(document, {}) == 2


def test_a_group_can_be_left_out() -> None:
    query = build_query([RepoRef("a", "b")], without=frozenset({"discussions"}))
    assert "discussions" not in query and "stargazerCount" in query


def test_the_body_is_json_with_the_query() -> None:
    assert json.loads(request_body([RepoRef("a", "b")]))["query"].startswith("query ExtensionMetrics")


def test_a_partial_answer_is_split_per_alias() -> None:
    payload = {
        "data": {"rateLimit": {"cost": 1}, "r0": NODE, "r1": None, "r2": None},
        "errors": [
            {"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve to a Repository with the name 'x/y'."},
            {"path": ["r2", "discussions"], "message": "Something went wrong"},
        ],
    }
    answer = split_answer(payload, 3)
    assert answer.repos["r0"].node == NODE and not answer.repos["r0"].errors
    assert answer.repos["r1"].node is None and answer.repos["r1"].errors[0].type == "NOT_FOUND"
    assert answer.repos["r2"].failed_groups == {"discussions"}
    assert answer.rate_limit == {"cost": 1}


def test_an_answer_without_data_is_a_graphql_error() -> None:
    with pytest.raises(FetchError) as raised:
        split_answer({"errors": [{"message": "Field 'x' doesn't exist on type 'Repository'"}]}, 1)
    assert str(raised.value) == "graphql error: Field 'x' doesn't exist on type 'Repository'"


def test_metrics_from_a_repository_node() -> None:
    metrics, errors = from_graphql(NODE)
    assert errors == {}
    assert metrics == {
        "full_name": "ckan/ckanext-dcat", "repo_id": 42, "url": "https://github.com/ckan/ckanext-dcat",
        "default_branch": "master", "stars": 190, "forks_count": 150, "is_archived": False, "license": "AGPL-3.0",
        "repository_size": 2048, "last_update": "2024-05-01T10:00:00Z",
        "language_stats": {"Python": 90.0, "HTML": 10.0}, "total_releases": 12, "latest_release": "v1.8.0",
        "release_date": "2024-02-01T00:00:00Z", "open_issues": 3, "open_pull_requests": 5, "discussions": 2,
        "discussions_enabled": True,
    }


def test_no_release_and_no_license_are_known_empties() -> None:
    metrics, errors = from_graphql({**NODE, "latestRelease": None, "licenseInfo": None})
    assert metrics["latest_release"] is None and metrics["release_date"] is None and metrics["license"] is None
    assert errors == {}


def test_a_wrong_count_is_an_error_not_a_zero() -> None:
    metrics, errors = from_graphql({**NODE, "stargazerCount": None})
    assert "stars" not in metrics
    assert errors["stars"].startswith("wrong shape:")


def test_skipped_groups_are_not_read() -> None:
    node = {k: v for k, v in NODE.items() if k not in ("discussions", "hasDiscussionsEnabled")}
    metrics, errors = from_graphql(node, skipped=frozenset({"discussions"}))
    assert "discussions" not in metrics and errors == {}


def test_language_shares_are_percent_largest_first() -> None:
    assert language_shares({"HTML": 1, "Python": 3}) == {"Python": 75.0, "HTML": 25.0}
    assert language_shares({}) == {}


def test_the_rest_repository_keeps_issues_and_pulls_together() -> None:
    metrics = from_rest_repository({
        "full_name": "a/b", "id": 1, "html_url": "https://github.com/a/b", "default_branch": "main",
        "stargazers_count": 3, "forks_count": 1, "archived": True, "license": {"spdx_id": "MIT"}, "size": 10,
        "pushed_at": "2024-01-01T00:00:00Z", "has_discussions": False, "open_issues_count": 8,
    })
    assert metrics["open_issues_and_pulls"] == 8 and "open_issues" not in metrics
    assert metrics["license"] == "MIT" and metrics["is_archived"] is True


LINK = (
    '<https://api.github.com/repositories/7/contributors?per_page=1&anon=1&page=2>; rel="next", '
    '<https://api.github.com/repositories/7/contributors?per_page=1&anon=1&page=57>; rel="last"'
)


def test_the_last_page_number_is_the_count() -> None:
    assert count_from_link(LINK, [{"login": "x"}], "contributors") == 57


@pytest.mark.parametrize(("page", "count"), [([], 0), ([{"login": "x"}], 1)])
def test_without_a_link_the_page_is_the_list(page: list, count: int) -> None:
    assert count_from_link(None, page, "contributors") == count


def test_a_next_link_without_last_cannot_be_counted() -> None:
    with pytest.raises(FetchError, match="no last link"):
        count_from_link('<https://x/?page=2>; rel="next"', [{}], "contributors")


def test_a_rate_limited_answer_is_not_a_graphql_error() -> None:
    with pytest.raises(FetchError) as raised:
        split_answer({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]}, 40)
    assert raised.value.kind == "rate limited"
