"""The GitHub stand-in answers as GitHub does (tests/github_standin).

Each test states one behaviour of GitHub's REST or GraphQL API that the extensions crawl
relies on, checked over HTTP against the stand-in subprocess.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.fixtures.github import FAKE_TOKEN

REPOS = [
    {"id": 7, "owner": "ckan", "name": "ckanext-dcat", "contributors": 57, "anonymous_contributors": 2,
     "open_issues": 3, "open_pulls": 5, "previous_names": ["okfn/ckanext-dcat"],
     "releases": [
         {"tag": "v2.0.0rc1", "created_at": "2024-03-01T00:00:00Z", "published_at": "2024-03-02T00:00:00Z", "prerelease": True},
         {"tag": "v1.8.0", "created_at": "2023-01-01T00:00:00Z", "published_at": "2024-02-01T00:00:00Z"},
         {"tag": "v1.9.0-draft", "created_at": "2024-04-01T00:00:00Z", "published_at": None, "draft": True},
     ]},
    {"id": 8, "owner": "ckan", "name": "ckanext-gone", "state": "deleted"},
    {"id": 9, "owner": "ckan", "name": "ckanext-blocked", "state": "blocked"},
    {"id": 10, "owner": "ckan", "name": "ckanext-huge", "contributors_too_large": True},
    {"id": 11, "owner": "ckan", "name": "ckanext-empty", "default_branch": None},
    {"id": 12, "owner": "ckan", "name": "ckanext-flaky", "graphql_field_errors": {"discussions": "Something went wrong"}},
]


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def call(url: str, token: str | None = FAKE_TOKEN, etag: str | None = None, query: str | None = None) -> Answer:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if etag:
        headers["If-None-Match"] = etag
    data = None
    if query is not None:
        data = json.dumps({"query": query}).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


@pytest.fixture
def github(github_standin):
    return github_standin(REPOS)


def test_a_per_page_1_list_links_to_its_last_page_by_repository_id(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat/contributors?per_page=1&anon=1")
    assert answer.status == 200 and len(answer.json) == 1
    assert answer.headers["Link"] == (
        f'<{github.url}/repositories/7/contributors?per_page=1&anon=1&page=2>; rel="next", '
        f'<{github.url}/repositories/7/contributors?per_page=1&anon=1&page=59>; rel="last"'
    )


def test_anonymous_contributors_only_with_anon(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat/contributors?per_page=1")
    assert 'page=57>; rel="last"' in answer.headers["Link"]


def test_a_middle_page_links_every_way(github) -> None:
    answer = call(f"{github.url}/repositories/7/contributors?per_page=10&page=3")
    rels = [part.split("rel=")[1] for part in answer.headers["Link"].split(", ")]
    assert rels == ['"prev"', '"next"', '"last"', '"first"']


def test_every_answer_carries_the_rate_limit_headers(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat")
    assert answer.headers["X-RateLimit-Limit"] == "5000"
    assert answer.headers["X-RateLimit-Remaining"] == "4999"
    assert answer.headers["X-RateLimit-Used"] == "1"
    assert answer.headers["X-RateLimit-Resource"] == "core"
    assert int(answer.headers["X-RateLimit-Reset"]) > time.time()


def test_a_conditional_request_answered_304_costs_nothing_with_a_token(github) -> None:
    first = call(f"{github.url}/repos/ckan/ckanext-dcat/contributors?per_page=1&anon=1")
    second = call(f"{github.url}/repos/ckan/ckanext-dcat/contributors?per_page=1&anon=1", etag=first.headers["ETag"])
    assert second.status == 304 and second.body == b""
    assert second.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"] == "4999"


def test_a_304_costs_one_without_a_token(github) -> None:
    first = call(f"{github.url}/repos/ckan/ckanext-dcat", token=None)
    second = call(f"{github.url}/repos/ckan/ckanext-dcat", token=None, etag=first.headers["ETag"])
    assert second.status == 304
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == ("59", "58")


def test_the_etag_is_tied_to_the_token(github_standin) -> None:
    github = github_standin(REPOS, tokens=(FAKE_TOKEN, "other-token"))
    first = call(f"{github.url}/repos/ckan/ckanext-dcat", token=FAKE_TOKEN)
    assert call(f"{github.url}/repos/ckan/ckanext-dcat", token="other-token", etag=first.headers["ETag"]).status == 200


def test_the_etag_covers_the_body_not_the_link(github) -> None:
    url = f"{github.url}/repos/ckan/ckanext-dcat/contributors?per_page=1&anon=1"
    first = call(url)
    github.update_repo("ckan/ckanext-dcat", anonymous_contributors=3)  # a new last contributor
    second = call(url, etag=first.headers["ETag"])
    assert second.status == 304  # GitHub may say "not modified" although the count changed


def test_an_old_name_answers_301_to_the_repository_id(github) -> None:
    answer = call(f"{github.url}/repos/okfn/ckanext-dcat/contributors?per_page=1")
    assert answer.status == 301
    assert answer.headers["Location"] == f"{github.url}/repositories/7/contributors?per_page=1"
    assert answer.json["message"] == "Moved Permanently"


def test_a_deleted_repository_is_404(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-gone")
    assert answer.status == 404 and answer.json["message"] == "Not Found"


def test_a_blocked_repository_is_451_with_the_reason(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-blocked")
    assert answer.status == 451
    assert answer.json["message"] == "Repository access blocked"
    assert answer.json["block"]["reason"] == "dmca"


def test_a_huge_repository_refuses_its_contributors(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-huge/contributors?per_page=1")
    assert answer.status == 403
    assert answer.json["message"].startswith("The history or contributor list is too large")


def test_an_empty_repository_has_no_content_for_contributors(github) -> None:
    assert call(f"{github.url}/repos/ckan/ckanext-empty/contributors").status == 204


def test_rest_counts_pull_requests_as_open_issues(github) -> None:
    repo = call(f"{github.url}/repos/ckan/ckanext-dcat").json
    assert repo["open_issues_count"] == 8
    issues = call(f"{github.url}/repos/ckan/ckanext-dcat/issues?state=open&per_page=100").json
    assert len(issues) == 8 and sum("pull_request" in i for i in issues) == 5


def test_releases_are_newest_first_and_latest_skips_prereleases_and_drafts(github) -> None:
    releases = call(f"{github.url}/repos/ckan/ckanext-dcat/releases").json
    assert [r["tag_name"] for r in releases] == ["v2.0.0rc1", "v1.8.0"]
    latest = call(f"{github.url}/repos/ckan/ckanext-dcat/releases/latest").json
    assert (latest["tag_name"], latest["created_at"], latest["published_at"]) == (
        "v1.8.0", "2023-01-01T00:00:00Z", "2024-02-01T00:00:00Z")


def test_statistics_answer_202_while_computing(github) -> None:
    assert call(f"{github.url}/repos/ckan/ckanext-dcat/stats/contributors").status == 202
    assert call(f"{github.url}/repos/ckan/ckanext-dcat/stats/contributors").status == 200


def test_an_unknown_token_is_refused(github) -> None:
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat", token="ghp_wrong")
    assert answer.status == 401 and answer.json["message"] == "Bad credentials"


def test_the_primary_limit_answers_403_with_remaining_zero(github) -> None:
    github.set_budget(FAKE_TOKEN, "core", 0, reset_in=30)
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat")
    assert answer.status == 403
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert answer.json["message"].startswith("API rate limit exceeded for user ID 1.")


def test_the_anonymous_limit_message_suggests_a_token(github) -> None:
    github.set_budget(None, "core", 0, reset_in=30)
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat", token=None)
    assert "Authenticated requests get a higher rate limit" in answer.json["message"]


def test_a_secondary_limit_after_too_many_points_in_a_minute(github_standin) -> None:
    github = github_standin(REPOS, secondary_core=3)
    statuses = [call(f"{github.url}/repos/ckan/ckanext-dcat").status for _ in range(4)]
    answer = call(f"{github.url}/repos/ckan/ckanext-dcat")
    assert statuses == [200, 200, 200, 403]
    assert answer.json["message"].startswith("You have exceeded a secondary rate limit")


def test_scripted_secondary_limits_with_and_without_retry_after(github) -> None:
    github.add_faults({"match": "dcat", "kind": "secondary", "retry_after": 7},
                      {"match": "dcat", "kind": "secondary", "status": 429})
    first = call(f"{github.url}/repos/ckan/ckanext-dcat")
    second = call(f"{github.url}/repos/ckan/ckanext-dcat")
    assert (first.status, first.headers["Retry-After"]) == (403, "7")
    assert (second.status, second.headers["Retry-After"]) == (429, None)
    assert call(f"{github.url}/repos/ckan/ckanext-dcat").status == 200


# -- GraphQL ---------------------------------------------------------------------------------

QUERY = """query {
  rateLimit { cost remaining }
  a: repository(owner: "ckan", name: "ckanext-dcat") { nameWithOwner releases { totalCount } latestRelease { tagName } }
  b: repository(owner: "ckan", name: "nope") { nameWithOwner }
  c: repository(owner: "okfn", name: "ckanext-dcat") { nameWithOwner }
  d: repository(owner: "ckan", name: "ckanext-flaky") { nameWithOwner discussions { totalCount } }
}"""


def test_graphql_answers_aliases_with_partial_errors(github) -> None:
    answer = call(f"{github.url}/graphql", query=QUERY)
    assert answer.status == 200
    data, errors = answer.json["data"], answer.json["errors"]
    assert data["a"] == {"nameWithOwner": "ckan/ckanext-dcat", "releases": {"totalCount": 2},
                         "latestRelease": {"tagName": "v1.8.0"}}
    assert data["b"] is None
    assert errors[0] == {"type": "NOT_FOUND", "path": ["b"], "locations": [{"line": 4, "column": 3}],
                         "message": "Could not resolve to a Repository with the name 'ckan/nope'."}


def test_graphql_follows_renames(github) -> None:
    assert call(f"{github.url}/graphql", query=QUERY).json["data"]["c"] == {"nameWithOwner": "ckan/ckanext-dcat"}


def test_a_failed_non_null_field_nulls_its_repository(github) -> None:
    answer = call(f"{github.url}/graphql", query=QUERY).json
    assert answer["data"]["d"] is None
    assert {"path": ["d", "discussions"], "message": "Something went wrong"}.items() <= answer["errors"][1].items()


def test_deleted_and_blocked_are_not_found_to_graphql(github) -> None:
    query = 'query { x: repository(owner: "ckan", name: "ckanext-gone") { id } y: repository(owner: "ckan", name: "ckanext-blocked") { id } }'
    errors = call(f"{github.url}/graphql", query=query).json["errors"]
    assert [e["type"] for e in errors] == ["NOT_FOUND", "NOT_FOUND"]


def test_an_unknown_field_fails_the_whole_query(github) -> None:
    answer = call(f"{github.url}/graphql", query='query { repository(owner: "ckan", name: "ckanext-dcat") { stars } }')
    assert answer.status == 200 and "data" not in answer.json
    assert answer.json["errors"][0]["message"] == "Field 'stars' doesn't exist on type 'Repository'"
    assert answer.json["errors"][0]["extensions"]["code"] == "undefinedField"


def test_a_syntax_error_says_where(github) -> None:
    answer = call(f"{github.url}/graphql", query="query { repository(owner: \"a\" name: \"b\") { id }")
    assert answer.json["errors"][0]["message"] == "Parse error on end of input at [1, 48]"


def test_nodes_need_a_page_size(github) -> None:
    query = 'query { repository(owner: "ckan", name: "ckanext-dcat") { releases { nodes { tagName } } } }'
    errors = call(f"{github.url}/graphql", query=query).json["errors"]
    assert errors[0]["type"] == "MISSING_PAGINATION_BOUNDARIES"


def test_graphql_cost_and_budget(github) -> None:
    answer = call(f"{github.url}/graphql", query=QUERY)
    assert answer.json["data"]["rateLimit"] == {"cost": 1, "remaining": 4999}
    assert answer.headers["X-RateLimit-Resource"] == "graphql"


def test_graphql_needs_a_token(github) -> None:
    answer = call(f"{github.url}/graphql", token=None, query=QUERY)
    assert answer.status == 401 and answer.json["message"] == "This endpoint requires you to be authenticated."


def test_an_exhausted_graphql_budget_answers_200_rate_limited(github) -> None:
    github.set_budget(FAKE_TOKEN, "graphql", 0, reset_in=30)
    answer = call(f"{github.url}/graphql", query=QUERY)
    assert answer.status == 200 and answer.headers["X-RateLimit-Remaining"] == "0"
    assert answer.json == {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]}


def test_the_newer_graphql_limit_shape_is_available(github_standin) -> None:
    github = github_standin(REPOS, graphql_limit_style="403")
    github.set_budget(FAKE_TOKEN, "graphql", 0, reset_in=30)
    answer = call(f"{github.url}/graphql", query=QUERY)
    assert answer.status == 403 and answer.json["errors"][0]["type"] == "RATE_LIMIT"


def test_a_scripted_graphql_timeout_is_a_502(github) -> None:
    github.add_faults({"match": "ckanext-dcat", "kind": "server_error"})
    answer = call(f"{github.url}/graphql", query=QUERY)
    assert answer.status == 502 and answer.json["data"] is None
    assert answer.json["errors"][0]["message"].startswith("Something went wrong while executing your query")


def test_the_log_never_holds_the_token(github) -> None:
    call(f"{github.url}/repos/ckan/ckanext-dcat")
    assert FAKE_TOKEN not in json.dumps(github.log())
    assert github.log()[-1]["identity"] == "user:1"
