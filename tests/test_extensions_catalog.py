"""``extensions`` discovering its work in the real CKAN 2.11 catalog (ckanext-scheming
``extension`` datasets), measuring on the GitHub stand-in."""
from __future__ import annotations

import pytest

from tests.fixtures.github import FAKE_TOKEN, crawl_extensions
from tests.github_standin.client import GitHubStandIn

BULK = 110  # with the special cases, more than one page of the catalog's package_search


def repo(id_: int, owner: str, name: str, **fields) -> dict:
    return {"id": id_, "owner": owner, "name": name, "contributors": 2, "stars": id_, **fields}


SPECIAL = [
    # (dataset, what it should become)
    ({"name": "ext-url", "url": "https://github.com/ckan/ckanext-a"}, ("ok", "ckan/ckanext-a")),
    ({"name": "ext-notes", "notes": "A harvester. Source: [GitHub](https://github.com/ckan/ckanext-b/tree/master)."},
     ("ok", "ckan/ckanext-b")),
    ({"name": "ext-extra-field", "detailed_info": "Install with pip from git@github.com:ckan/ckanext-c.git"},
     ("ok", "ckan/ckanext-c")),
    ({"name": "ext-resource", "resources": [{"name": "Release", "url": "https://github.com/ckan/ckanext-e/archive/refs/tags/v1.zip"}]},
     ("ok", "ckan/ckanext-e")),
    ({"name": "ext-messy-url", "url": "HTTP://WWW.GitHub.com/CKAN/ckanext-f.git/"}, ("ok", "ckan/ckanext-f")),
    ({"name": "ext-renamed", "url": "https://github.com/ckan/ckanext-old-name"}, ("ok", "new-home/ckanext-g")),
    ({"name": "ext-gitlab", "url": "https://gitlab.com/group/ckanext-gl"}, ("failed", "not github")),
    ({"name": "ext-bitbucket", "notes": "Hosted at https://bitbucket.org/team/ckanext-bb for now."}, ("failed", "not github")),
    ({"name": "ext-no-url", "notes": "A theme. No repository given."}, ("failed", "no url")),
    ({"name": "ext-deleted", "url": "https://github.com/ckan/ckanext-deleted"}, ("failed", "not found")),
]
REPOS = [
    repo(1, "ckan", "ckanext-a"), repo(2, "ckan", "ckanext-b"), repo(3, "ckan", "ckanext-c"),
    repo(5, "ckan", "ckanext-e"), repo(6, "ckan", "ckanext-f"),
    repo(7, "new-home", "ckanext-g", previous_names=["ckan/ckanext-old-name"]),
    repo(8, "ckan", "ckanext-deleted", state="deleted"),
] + [repo(1000 + i, "bulk-org", f"ckanext-bulk{i:03d}", contributors=i) for i in range(BULK)]


SITE_WITH_REPO = "site-hosted-on-github"


@pytest.fixture(scope="module")
def catalog_with_extensions(ckan_catalog):
    datasets = [{"title": d["name"], **d} for d, _ in SPECIAL]
    datasets += [{"name": f"ext-bulk-{i:03d}", "title": f"Bulk {i}", "url": f"https://github.com/bulk-org/ckanext-bulk{i:03d}",
                  "extension_type": "general"} for i in range(BULK)]
    ckan_catalog.seed_extension_datasets(datasets)
    # A site whose URL is a GitHub repository: it must not be read as an extension.
    ckan_catalog.seed_site_datasets([{"name": SITE_WITH_REPO, "title": "A site", "url": "https://github.com/ckan/ckan"}])
    return ckan_catalog


@pytest.fixture(scope="module")
def catalog_run(catalog_with_extensions, tmp_path_factory):
    with GitHubStandIn(repos=REPOS, tokens=(FAKE_TOKEN,)) as github:
        run = crawl_extensions(github, tmp_path_factory.mktemp("extensions-catalog"),
                               args={"catalog": catalog_with_extensions.url})
    assert run.returncode == 0, run.log[-3000:]
    return run


def test_every_extension_of_the_catalog_is_measured_once(catalog_run) -> None:
    names = [i["catalog_dataset"] for i in catalog_run.items if i["catalog_dataset"].startswith("ext-")]
    assert sorted(names) == sorted([d["name"] for d, _ in SPECIAL] + [f"ext-bulk-{i:03d}" for i in range(BULK)])
    assert all(i["source"] == "catalog" and i["catalog_dataset_id"] for i in catalog_run.items)
    assert catalog_run.stats["extensions/catalog/datasets"] == len(catalog_run.items)


def test_site_datasets_are_not_extensions(catalog_run, catalog_with_extensions) -> None:
    # Other test modules share the catalog: judge by the catalog's own dataset types.
    extension_datasets = {
        d["name"] for d in catalog_with_extensions.search(fq="dataset_type:extension", rows=1000)["results"]
    }
    measured = {i["catalog_dataset"] for i in catalog_run.items}
    assert SITE_WITH_REPO not in measured
    assert measured <= extension_datasets


@pytest.mark.parametrize(("dataset", "expected"), SPECIAL, ids=[d["name"] for d, _ in SPECIAL])
def test_the_repository_is_found_wherever_it_is_listed(catalog_run, dataset, expected) -> None:
    item = catalog_run.item(dataset["name"])
    status, what = expected
    assert item["status"] == status
    if status == "ok":
        assert item["full_name"] == what
    else:
        assert item["failure"].split(":", 1)[0] == what


def test_the_renamed_extension_keeps_its_catalog_identity(catalog_run) -> None:
    item = catalog_run.item("ext-renamed")
    assert (item["extension"], item["repository"], item["renamed_from"], item["full_name"]) == (
        "ext-renamed", "ckan/ckanext-old-name", "ckan/ckanext-old-name", "new-home/ckanext-g")


def test_bulk_extensions_have_their_exact_counts(catalog_run) -> None:
    counts = {i["catalog_dataset"]: i["contributors_count"] for i in catalog_run.items if i["catalog_dataset"].startswith("ext-bulk")}
    assert counts == {f"ext-bulk-{i:03d}": i for i in range(BULK)}
