"""The original GitHub metrics collector, re-implemented for the benchmark.

What ckancrawl's ``extensions`` spider replaces: the ``2refresh.py`` stage of the
catalog's weekly pipeline (../shared/DESIGN.md), which used PyGithub. Reproduced as it
behaves on the wire, with plain ``requests`` (PyGithub's transport), including what it
gets wrong:

- one repository after the other, in the order of the input CSV (``url`` column;
  the full name is the URL's last two path segments);
- per repository, as PyGithub issues them: ``GET /repos/{full}`` (``get_repo``), every
  page of ``GET /repos/{full}/releases`` (``list(get_releases())``, 30 per page),
  every page of ``GET /repos/{full}/contributors`` (``list(get_contributors())``, 30
  per page, without ``anon``), and every page of the repository's discussions over
  GraphQL (``list(get_discussions())``, 30 per page);
- after every tenth repository ``GET /rate_limit`` (``get_rate_limit()``), then a 1 s
  pause when more than 100 requests are left, else a sleep until the reset plus 60 s;
- its metrics: ``total_releases`` = len(releases), ``latest_release`` = releases[0] and
  its ``created_at`` date, ``open_issues`` = ``open_issues_count`` (pull requests
  included), ``contributors_count`` = len(contributors) (0 when listing failed),
  ``discussions`` = whether listing them worked;
- everything is written to the output CSV at the very end.

Run: ``python -m bench.extensions.original url_list.csv out.csv --api URL --graphql URL``
with the token in ``GITHUB_TOKEN_METADATA`` (the original's variable). Prints one JSON
line with its timings on stdout when done.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

import requests

PER_PAGE = 30  # PyGithub's default page size
DISCUSSIONS_QUERY = """query Q($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    discussions(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } nodes { number title }
    }
  }
}"""


class Collector:
    def __init__(self, api: str, graphql: str, token: str) -> None:
        self.api = api.rstrip("/")
        self.graphql = graphql
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"token {token}",
            "Accept": "application/vnd.github.v3+json",
            "User-Agent": "PyGithub/Python",
        })
        self.requests = 0
        self.slept = 0.0

    def get(self, url: str) -> requests.Response:
        self.requests += 1
        response = self.session.get(url, timeout=15)
        if response.status_code >= 400:
            raise RuntimeError(f"{response.status_code} {response.text[:200]}")
        return response

    def all_pages(self, url: str) -> list[Any]:
        items: list[Any] = []
        while url:
            response = self.get(url)
            items += response.json() if response.status_code != 204 else []
            url = response.links.get("next", {}).get("url")
        return items

    def discussions(self, owner: str, name: str) -> list[Any]:
        nodes: list[Any] = []
        after = None
        while True:
            self.requests += 1
            response = self.session.post(self.graphql, json={"query": DISCUSSIONS_QUERY, "variables": {
                "owner": owner, "name": name, "first": PER_PAGE, "after": after}}, timeout=15)
            data = response.json()
            if data.get("errors") or not (data.get("data") or {}).get("repository"):
                raise RuntimeError(str(data.get("errors"))[:200])
            connection = data["data"]["repository"]["discussions"]
            nodes += connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return nodes
            after = connection["pageInfo"]["endCursor"]

    def metadata(self, repo: dict[str, Any]) -> dict[str, Any]:
        full = repo["full_name"]
        releases = self.all_pages(f"{self.api}/repos/{full}/releases")
        latest = releases[0] if releases else None
        try:
            contributors_count = len(self.all_pages(f"{self.api}/repos/{full}/contributors"))
        except Exception as exc:  # the original printed and wrote 0
            print(f"Error getting contributors count: {exc}")
            contributors_count = 0
        try:
            owner, name = full.split("/")
            self.discussions(owner, name)
            discussions = True
        except Exception:
            discussions = bool(repo.get("has_discussions"))
        return {
            "url": repo.get("html_url"),
            "repository_name": full,
            "forks_count": repo.get("forks_count"),
            "total_releases": len(releases),
            "latest_release": latest["tag_name"] if latest else "No releases",
            "release_date": latest["created_at"][:10] if latest else "No releases",
            "stars": repo.get("stargazers_count"),
            "open_issues": repo.get("open_issues_count"),
            "contributors_count": contributors_count,
            "discussions": discussions,
            "tstamp": datetime.now(timezone.utc).replace(tzinfo=None).isoformat() + "+00:00",
        }

    def pause_after_ten(self) -> None:
        self.requests += 1  # GET /rate_limit does not count against the budget, but it is a request
        core = self.session.get(f"{self.api}/rate_limit", timeout=15).json()["resources"]["core"]
        if core["remaining"] < 100:
            wait = core["reset"] - time.time() + 60
        else:
            wait = 1.0
        time.sleep(wait)
        self.slept += wait

    def run(self, urls: list[str]) -> tuple[list[dict[str, Any]], int]:
        results, errors = [], 0
        for index, url in enumerate(urls, 1):
            full = "/".join(url.strip().rstrip("/").split("/")[-2:])
            try:
                try:
                    repo = self.get(f"{self.api}/repos/{full}").json()
                except Exception as exc:
                    print(f"Error getting repository {full}: {exc}")
                    errors += 1
                    continue
                try:
                    results.append(self.metadata(repo))
                except Exception as exc:
                    print(f"Error extracting metadata for {full}: {exc}")
                    errors += 1
                if index % 10 == 0:
                    self.pause_after_ten()
            except Exception as exc:
                print(f"Error processing URL {url}: {exc}")
                errors += 1
        return results, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extensions.original")
    parser.add_argument("input_csv")
    parser.add_argument("output_csv")
    parser.add_argument("--api", default="https://api.github.com")
    parser.add_argument("--graphql", default="https://api.github.com/graphql")
    args = parser.parse_args(argv)
    token = os.environ.get("GITHUB_TOKEN_METADATA")
    if not token:
        print("Error: Please set a valid GitHub token in GITHUB_TOKEN_METADATA.")
        return 1
    with open(args.input_csv, newline="", encoding="utf-8") as handle:
        urls = [row["url"] for row in csv.DictReader(handle) if row.get("url", "").strip()]
    started = time.monotonic()
    collector = Collector(args.api, args.graphql, token)
    results, errors = collector.run(urls)
    with open(args.output_csv, "w", newline="", encoding="utf-8") as handle:
        columns = ["repository_name", "url", "forks_count", "total_releases", "latest_release", "release_date",
                   "stars", "open_issues", "contributors_count", "discussions", "tstamp"]
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(results)
    print(json.dumps({"seconds": round(time.monotonic() - started, 2), "slept": round(collector.slept, 2),
                      "requests": collector.requests, "processed": len(results), "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
