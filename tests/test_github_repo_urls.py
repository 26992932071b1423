"""Which GitHub repository a listing names (ckancrawl.github.repo_urls)."""
from __future__ import annotations

import pytest

from ckancrawl.github.repo_urls import RepoRef, other_code_host, parse_repository, repository_from_dataset


@pytest.mark.parametrize(
    "text",
    [
        "https://github.com/ckan/ckanext-dcat",
        "http://github.com/ckan/ckanext-dcat/",
        "https://www.github.com/ckan/ckanext-dcat",
        "HTTPS://GITHUB.COM/ckan/ckanext-dcat",
        "github.com/ckan/ckanext-dcat",
        "https://github.com/ckan/ckanext-dcat.git",
        "https://github.com/ckan/ckanext-dcat/tree/master/ckanext/dcat",
        "https://github.com/ckan/ckanext-dcat/blob/master/README.md#install",
        "https://github.com/ckan/ckanext-dcat/issues",
        "https://github.com/ckan/ckanext-dcat?tab=readme-ov-file",
        "git@github.com:ckan/ckanext-dcat.git",
        "git+https://github.com/ckan/ckanext-dcat.git",
        "ssh://git@github.com/ckan/ckanext-dcat.git",
        "https://api.github.com/repos/ckan/ckanext-dcat",
        "https://raw.githubusercontent.com/ckan/ckanext-dcat/master/setup.py",
    ],
)
def test_every_way_of_writing_a_repository_names_owner_and_name(text: str) -> None:
    ref = parse_repository(text)
    assert ref is not None and ref.key == "ckan/ckanext-dcat"


def test_the_listing_case_is_kept_and_the_key_ignores_it() -> None:
    ref = parse_repository("https://github.com/CKAN/CKANext-DCAT")
    assert ref == RepoRef("CKAN", "CKANext-DCAT")
    assert ref.key == "ckan/ckanext-dcat"


@pytest.mark.parametrize(
    "text",
    [
        "https://github.com/ckan",
        "https://github.com/orgs/ckan/repositories",
        "https://github.com/sponsors/ckan",
        "https://ckan.github.io/ckanext-dcat",
        "https://gitlab.com/ckan/ckanext-dcat",
        "not a url",
        "",
        None,
    ],
)
def test_what_is_not_a_github_repository_is_refused(text: object) -> None:
    assert parse_repository(text) is None


def test_bare_owner_and_name_only_when_allowed() -> None:
    assert parse_repository("ckan/ckanext-dcat") is None
    assert parse_repository("ckan/ckanext-dcat", allow_bare=True) == RepoRef("ckan", "ckanext-dcat")


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("https://gitlab.com/ckan/x", "gitlab.com"),
        ("https://gitlab.example.gov/ckan/x", "gitlab.example.gov"),
        ("https://bitbucket.org/ckan/x", "bitbucket.org"),
        ("git@codeberg.org:ckan/x.git", "codeberg.org"),
        ("https://github.com/ckan/x", None),
        ("https://example.org/ckan/x", None),
    ],
)
def test_other_code_hosts_are_recognised(text: str, host: str | None) -> None:
    assert other_code_host(text) == host


def test_the_dataset_url_comes_first() -> None:
    dataset = {"url": "https://github.com/a/first", "notes": "See https://github.com/b/second"}
    assert repository_from_dataset(dataset) == ("https://github.com/a/first", RepoRef("a", "first"))


def test_a_markdown_link_in_the_notes_is_found() -> None:
    dataset = {"url": "https://docs.example.org", "notes": "Code: [repo](https://github.com/ckan/ckanext-x). Thanks."}
    listed, ref = repository_from_dataset(dataset)
    assert ref == RepoRef("ckan", "ckanext-x")
    assert listed == "https://github.com/ckan/ckanext-x"


def test_extras_are_searched_in_both_shapes() -> None:
    as_list = {"extras": [{"key": "repository", "value": "git@github.com:ckan/ckanext-y.git"}]}
    assert repository_from_dataset(as_list)[1] == RepoRef("ckan", "ckanext-y")
    scheming = {"git_repo": "https://github.com/ckan/ckanext-z/tree/main"}
    assert repository_from_dataset(scheming)[1] == RepoRef("ckan", "ckanext-z")


def test_resources_come_last() -> None:
    dataset = {"notes": "nothing here", "resources": [{"url": "https://github.com/ckan/ckanext-r/archive/v1.zip"}]}
    assert repository_from_dataset(dataset)[1] == RepoRef("ckan", "ckanext-r")


def test_an_account_link_is_skipped_for_a_later_repository() -> None:
    dataset = {"url": "https://github.com/ckan", "notes": "https://github.com/ckan/ckanext-later"}
    assert repository_from_dataset(dataset)[1] == RepoRef("ckan", "ckanext-later")


def test_a_gitlab_extension_is_recorded_as_not_github() -> None:
    listed, error = repository_from_dataset({"url": "https://gitlab.com/group/ckanext-gl"})
    assert listed == "https://gitlab.com/group/ckanext-gl"
    assert str(error).startswith("not github: the repository is on gitlab.com")


def test_a_dataset_without_a_repository_says_so() -> None:
    listed, error = repository_from_dataset({"name": "x", "notes": "A plugin. Homepage: https://example.org"})
    assert listed is None
    assert str(error).startswith("no url: no GitHub repository URL")


def test_only_an_account_link_is_explained() -> None:
    listed, error = repository_from_dataset({"url": "https://github.com/ckan"})
    assert listed == "https://github.com/ckan"
    assert "account or page, not a repository" in str(error)


def test_plain_fields_that_look_like_owner_name_are_not_repositories() -> None:
    _, error = repository_from_dataset({"extension_type": "theme/dataset_type", "ckan_version": "2.9/2.10"})
    assert str(error).startswith("no url:")
