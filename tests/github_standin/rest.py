"""The REST endpoints of GitHub the extensions crawl (and the original pipeline) use.

``route`` answers one request with (status, JSON body or None, extra headers). What is
faithful: ``/repos/{owner}/{repo}`` and ``/repositories/{id}`` with every sub-path;
301 from an old name to ``/repositories/{id}/...`` (query kept); 404 and 451 bodies;
pagination with ``per_page`` (default 30, at most 100) and ``page`` and a ``Link`` header
(``prev``, ``next``, ``last``, ``first``) whose URLs use ``/repositories/{id}``;
contributors with ``anon``, 204 for an empty repository, 403 "too large"; issues that
include pull requests and a repository ``open_issues_count`` that counts both;
releases newest first with ``/releases/latest``; 202 from ``/stats/*`` until computed.
"""
from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.github_standin import world as world_model

DOCS = "https://docs.github.com/rest"
NOT_FOUND = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
TOO_LARGE = {
    "message": "The history or contributor list is too large to list contributors for this repository via the API.",
    "documentation_url": "https://docs.github.com/rest/repos/repos#list-repository-contributors",
    "status": "403",
}

Answer = tuple[int, Any, dict[str, str]]


class Rest:
    def __init__(self, world: world_model.World, base_url: str) -> None:
        self.world = world
        self.base_url = base_url.rstrip("/")
        self.stats_computed: set[int] = set()

    def route(self, method: str, path: str, query: str) -> Answer:
        if method != "GET":
            return 404, NOT_FOUND, {}
        segments = [s for s in path.split("/") if s]
        params = dict(parse_qsl(query, keep_blank_values=True))
        if len(segments) >= 3 and segments[0] == "repos":
            repo, moved = self.world.find(segments[1], segments[2], follow_renames=False)[0], False
            if repo is None:
                repo, moved = self.world.find(segments[1], segments[2])
            rest = segments[3:]
        elif len(segments) >= 2 and segments[0] == "repositories" and segments[1].isdigit():
            repo, moved = self.world.by_id.get(int(segments[1])), False
            rest = segments[2:]
        else:
            return 404, NOT_FOUND, {}
        if repo is None or repo["state"] == "deleted":
            return 404, NOT_FOUND, {}
        if moved:
            location = f"{self.base_url}/repositories/{repo['id']}" + "".join(f"/{s}" for s in rest)
            if query:
                location += f"?{query}"
            body = {"message": "Moved Permanently", "url": location,
                    "documentation_url": "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"}
            return 301, body, {"Location": location}
        if repo["state"] == "blocked":
            block = {"reason": "dmca", "created_at": "2021-04-22T17:53:56Z",
                     "html_url": "https://github.com/github/dmca/blob/master/2021/04/2021-04-20-example.md",
                     **(repo.get("block") or {})}
            return 451, {"message": "Repository access blocked", "block": block}, {}
        return self._sub_resource(repo, rest, params)

    def _sub_resource(self, repo: dict[str, Any], rest: list[str], params: dict[str, str]) -> Answer:
        sub = "/".join(rest)
        if sub == "":
            return 200, self.repository_json(repo), {}
        if sub == "contributors":
            if repo["default_branch"] is None:
                return 204, None, {}
            if repo["contributors_too_large"]:
                return 403, TOO_LARGE, {}
            anon = params.get("anon", "").lower() in ("1", "true")
            return self._paged(repo, "contributors", world_model.contributors(repo, anon), params)
        if sub == "pulls":
            count = repo["open_pulls"] if params.get("state", "open") in ("open", "all") else 0
            pulls = [self._issue(repo, count - i, pull=True) for i in range(count)]
            return self._paged(repo, "pulls", pulls, params)
        if sub == "issues":
            state = params.get("state", "open")
            issues = repo["open_issues"] if state in ("open", "all") else 0
            pulls = repo["open_pulls"] if state in ("open", "all") else 0
            items = [self._issue(repo, issues + pulls - i, pull=i < pulls) for i in range(issues + pulls)]
            return self._paged(repo, "issues", items, params)
        if sub == "releases":
            latest = world_model.latest_release(repo)
            items = [self._release(repo, r, latest) for r in world_model.visible_releases(repo)]
            return self._paged(repo, "releases", items, params)
        if sub == "releases/latest":
            latest = world_model.latest_release(repo)
            if latest is None:
                return 404, {**NOT_FOUND, "documentation_url": f"{DOCS}/releases/releases#get-the-latest-release"}, {}
            return 200, self._release(repo, latest, latest), {}
        if sub == "languages":
            return 200, dict(sorted(repo["languages"].items(), key=lambda kv: -kv[1])), {}
        if sub.startswith("stats/"):
            if repo["id"] not in self.stats_computed:
                self.stats_computed.add(repo["id"])
                return 202, {}, {}
            people = world_model.contributors(repo, anon=False)
            return 200, [{"author": {"login": p["login"]}, "total": p["contributions"], "weeks": []} for p in people], {}
        return 404, NOT_FOUND, {}

    def _paged(self, repo: dict[str, Any], sub: str, items: list[Any], params: dict[str, str]) -> Answer:
        try:
            per_page = min(100, max(1, int(params.get("per_page", "30") or 30)))
            page = max(1, int(params.get("page", "1") or 1))
        except ValueError:
            per_page, page = 30, 1
        last = max(1, -(-len(items) // per_page))
        body = items[(page - 1) * per_page: page * per_page]
        links = []

        def link(number: int, rel: str) -> str:
            query = {**params, "page": str(number)}
            return f'<{self.base_url}/repositories/{repo["id"]}/{sub}?{urlencode(query)}>; rel="{rel}"'

        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return 200, body, ({"Link": ", ".join(links)} if links else {})

    def _issue(self, repo: dict[str, Any], number: int, pull: bool) -> dict[str, Any]:
        issue: dict[str, Any] = {"number": number, "title": f"{'Pull request' if pull else 'Issue'} {number}",
                                 "state": "open", "html_url": f"https://github.com/{world_model.full_name(repo)}/issues/{number}"}
        if pull:
            issue["pull_request"] = {"url": f"{self.base_url}/repos/{world_model.full_name(repo)}/pulls/{number}"}
        return issue

    def _release(self, repo: dict[str, Any], release: dict[str, Any], latest: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": zlib.crc32(f"{repo['id']}/{release['tag']}".encode()), "tag_name": release["tag"],
            "name": release.get("name") or release["tag"], "draft": False,
            "prerelease": bool(release.get("prerelease")), "created_at": release["created_at"],
            "published_at": release.get("published_at"),
            "html_url": f"https://github.com/{world_model.full_name(repo)}/releases/tag/{release['tag']}",
        }

    def repository_json(self, repo: dict[str, Any]) -> dict[str, Any]:
        full = world_model.full_name(repo)
        spdx = repo["license"]
        license_json = None
        if spdx is not None:
            key = "other" if spdx == "NOASSERTION" else spdx.lower()
            license_json = {"key": key, "name": "Other" if spdx == "NOASSERTION" else spdx, "spdx_id": spdx,
                            "url": None if spdx == "NOASSERTION" else f"{self.base_url}/licenses/{key}"}
        language = max(repo["languages"], key=repo["languages"].get) if repo["languages"] else None
        open_both = repo["open_issues"] + repo["open_pulls"]
        return {
            "id": repo["id"], "node_id": f"R_{repo['id']}", "name": repo["name"], "full_name": full,
            "private": False, "owner": {"login": repo["owner"], "type": "Organization"},
            "html_url": f"https://github.com/{full}", "description": repo["description"], "fork": repo["fork"],
            "url": f"{self.base_url}/repos/{full}", "created_at": repo["created_at"],
            "updated_at": repo["updated_at"] or repo["pushed_at"], "pushed_at": repo["pushed_at"],
            "size": repo["size"], "stargazers_count": repo["stars"], "watchers_count": repo["stars"],
            "language": language, "has_issues": True, "has_discussions": repo["has_discussions"],
            "forks_count": repo["forks"], "archived": repo["archived"], "disabled": False,
            "open_issues_count": open_both, "license": license_json, "visibility": "public",
            "forks": repo["forks"], "open_issues": open_both, "watchers": repo["stars"],
            "default_branch": repo["default_branch"] or "main",
        }
