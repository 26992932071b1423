"""The repositories the stand-in serves, as plain data (JSON in, JSON out).

A repository::

    {"id": 1001, "owner": "ckan", "name": "ckanext-dcat",
     "previous_names": ["okfn/ckanext-dcat"],   # renamed or transferred from
     "state": "ok" | "deleted" | "blocked",     # deleted: 404, blocked: 451
     "block": {"reason": "dmca", "created_at": "2021-04-22T17:53:56Z"},
     "stars": 190, "forks": 150, "archived": false, "license": "AGPL-3.0" | "NOASSERTION" | null,
     "size": 2048, "pushed_at": "2024-05-01T10:00:00Z",
     "default_branch": "master" | null,          # null: an empty repository
     "languages": {"Python": 90000, "HTML": 5000},
     "open_issues": 12, "open_pulls": 4,         # GitHub's REST open_issues_count is their sum
     "discussions": 3, "has_discussions": true,
     "contributors": 57, "anonymous_contributors": 2, "contributors_too_large": false,
     "releases": [{"tag": "v1.0", "created_at": "...", "published_at": "...",
                   "draft": false, "prerelease": false, "make_latest": null}],
     "graphql_field_errors": {"discussions": "Something went wrong ..."},
     "graphql_follows_rename": true}            # false: GraphQL answers NOT_FOUND for old names

Deleted and blocked repositories are NOT_FOUND to GraphQL (it does not say why); REST
tells them apart (404, 451).

Releases are listed by creation time, newest first, as GitHub does; drafts are invisible
to tokens without push access, so they are never served. The latest release is the one
marked ``make_latest``, else the newest by creation time that is neither a draft nor a
pre-release, as GitHub defines it.
"""
from __future__ import annotations

import copy
import random
from typing import Any

DEFAULTS: dict[str, Any] = {
    "previous_names": [], "state": "ok", "block": None, "stars": 0, "forks": 0, "archived": False,
    "license": None, "size": 0, "pushed_at": "2024-01-01T00:00:00Z", "created_at": "2015-01-01T00:00:00Z",
    "updated_at": None, "default_branch": "main", "languages": {}, "open_issues": 0, "open_pulls": 0,
    "discussions": 0, "has_discussions": False, "contributors": 0, "anonymous_contributors": 0,
    "contributors_too_large": False, "releases": [], "graphql_field_errors": {}, "description": None,
    "fork": False, "graphql_follows_rename": True,
}


class World:
    def __init__(self, repos: list[dict[str, Any]]) -> None:
        self.repos: list[dict[str, Any]] = []
        for raw in repos:
            repo = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(raw)}
            self.repos.append(repo)
        self._index()

    def _index(self) -> None:
        self.by_id = {repo["id"]: repo for repo in self.repos}
        self.by_name: dict[str, dict[str, Any]] = {}
        self.moved: dict[str, dict[str, Any]] = {}
        for repo in self.repos:
            self.by_name[full_name(repo).lower()] = repo
            for old in repo["previous_names"]:
                self.moved[old.lower()] = repo

    def find(self, owner: str, name: str, follow_renames: bool = True) -> tuple[dict[str, Any] | None, bool]:
        """(repository, reached through an old name)."""
        key = f"{owner}/{name}".lower()
        if key in self.by_name:
            return self.by_name[key], False
        if follow_renames and key in self.moved:
            return self.moved[key], True
        return None, False

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        repo = self.by_name[name.lower()]
        old = full_name(repo)
        repo.update(copy.deepcopy(changes))
        if full_name(repo).lower() != old.lower() and old not in repo["previous_names"]:
            repo["previous_names"].append(old)
        self._index()
        return repo

    def dump(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.repos)


def full_name(repo: dict[str, Any]) -> str:
    return f"{repo['owner']}/{repo['name']}"


def visible_releases(repo: dict[str, Any]) -> list[dict[str, Any]]:
    releases = [r for r in repo["releases"] if not r.get("draft")]
    return sorted(releases, key=lambda r: r["created_at"], reverse=True)


def latest_release(repo: dict[str, Any]) -> dict[str, Any] | None:
    candidates = [r for r in visible_releases(repo) if not r.get("prerelease")]
    marked = [r for r in candidates if r.get("make_latest")]
    if marked:
        return marked[0]
    return candidates[0] if candidates else None


def contributors(repo: dict[str, Any], anon: bool) -> list[dict[str, Any]]:
    """The contributor list GitHub would compute: by contributions, most first."""
    people = [
        {"login": f"{repo['name'][:20]}-dev{i}", "id": repo["id"] * 1000 + i, "type": "User",
         "contributions": max(1, 400 - 3 * i)}
        for i in range(repo["contributors"])
    ]
    if anon:
        people += [
            {"email": f"anon{i}@example.org", "name": f"Anonymous {i}", "type": "Anonymous",
             "contributions": 1}
            for i in range(repo["anonymous_contributors"])
        ]
    people.sort(key=lambda p: -p["contributions"])
    return people


def generate(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """A plausible population of CKAN extension repositories, the same for one seed."""
    rng = random.Random(seed)
    owners = ["ckan", "okfn", "datagovuk", "GSA", "keitaroinc", "opendatasoft", "DataShades",
              "NaturalHistoryMuseum", "qld-gov-au", "derilinx", "open-data", "ontodia"]
    languages = ["Python", "HTML", "JavaScript", "CSS", "Shell", "Less", "Jinja", "Dockerfile"]
    licenses = ["AGPL-3.0", "MIT", "Apache-2.0", "GPL-3.0", "NOASSERTION", None]
    repos = []
    for i in range(count):
        contributors_count = rng.choices(
            [rng.randint(1, 5), rng.randint(6, 30), rng.randint(31, 100), rng.randint(101, 300)],
            weights=[50, 35, 12, 3],
        )[0]
        release_count = rng.choices([0, rng.randint(1, 5), rng.randint(6, 30), rng.randint(31, 80)], weights=[35, 40, 20, 5])[0]
        releases = []
        for r in range(release_count):
            year = 2014 + r * 10 // max(1, release_count)
            releases.append({
                "tag": f"v{r // 10}.{r % 10}.0",
                "created_at": f"{year}-{1 + r % 12:02d}-0{1 + r % 9}T10:00:00Z",
                "published_at": f"{year}-{1 + r % 12:02d}-1{1 + r % 9}T10:00:00Z",
                "prerelease": rng.random() < 0.1,
            })
        enabled = rng.random() < 0.2
        picked = rng.sample(languages, rng.randint(1, 4))
        repos.append({
            "id": 500000 + i,
            "owner": rng.choice(owners),
            "name": f"ckanext-bench{i:04d}",
            "stars": int(rng.lognormvariate(2.5, 1.3)),
            "forks": int(rng.lognormvariate(1.8, 1.2)),
            "archived": rng.random() < 0.1,
            "license": rng.choice(licenses),
            "size": rng.randint(20, 40000),
            "pushed_at": f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z",
            "default_branch": rng.choice(["master", "main"]),
            "languages": {name: rng.randint(100, 200000) for name in picked},
            "open_issues": rng.randint(0, 40),
            "open_pulls": rng.randint(0, 10),
            "discussions": rng.randint(0, 60) if enabled else 0,
            "has_discussions": enabled,
            "contributors": contributors_count,
            "anonymous_contributors": rng.randint(0, 3),
            "releases": releases,
        })
    return repos
