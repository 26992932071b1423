"""The CKAN 2.11 test catalog end to end: CKAN, PostgreSQL, Redis, datastore, Solr stand-in."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from ckanapi import ValidationError

from tests.ckan.catalog import Catalog


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """A plain GET, as a crawler does it, returning the status and the decoded envelope."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def api(catalog: Catalog, action: str, **params: Any) -> tuple[int, dict[str, Any]]:
    return get(f"{catalog.url}/api/3/action/{action}?{urllib.parse.urlencode(params)}")


def site(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "title": name.replace("-", " ").title(), "url": f"https://{name}.example.org", **fields}


@pytest.fixture(scope="module")
def paging_sites(ckan_catalog: Catalog) -> list[dict[str, Any]]:
    """Seven site datasets for the search tests of this module."""
    ckan_catalog.seed_site_datasets([site(f"paging-site-{i}", num_datasets=i * 10) for i in range(7)])
    return [ckan_catalog.action("package_show", id=f"paging-site-{i}") for i in range(7)]


def test_status_show_reports_ckan_2_11_6_and_its_plugins(ckan_catalog):
    status, body = api(ckan_catalog, "status_show")
    assert status == 200 and body["success"] is True
    assert body["result"]["ckan_version"] == "2.11.6"
    assert body["result"]["extensions"] == ["activity", "datastore", "scheming_datasets"]
    assert body["result"]["site_url"] == ckan_catalog.url


def test_the_session_catalog_has_the_test_organization(ckan_catalog):
    assert ckan_catalog.org in ckan_catalog.action("organization_list")


@pytest.mark.parametrize("filters", ["fq", "fq_list"])
def test_created_site_datasets_are_found_by_search_page_by_page(ckan_catalog, paging_sites, filters):
    ids = sorted(d["id"] for d in paging_sites)
    seen, last = [], None
    while True:
        conditions = ["dataset_type:site"] + ([] if last is None else [f'id:{{"{last}" TO *]'])
        params = {"fq": " AND ".join(conditions)} if filters == "fq" else {"fq_list": conditions}
        result = ckan_catalog.search(q="name:paging-site-*", sort="id asc", rows=3, **params)
        if not result["results"]:
            break
        seen += [d["id"] for d in result["results"]]
        last = result["results"][-1]["id"]
    assert seen == ids


def test_package_search_counts_and_pages_with_start(ckan_catalog, paging_sites):
    first = ckan_catalog.search(q="name:paging-site-*", sort="name asc", rows=3)
    second = ckan_catalog.search(q="name:paging-site-*", sort="name asc", rows=3, start=3)
    assert first["count"] == second["count"] == 7
    assert [d["name"] for d in first["results"] + second["results"]] == [f"paging-site-{i}" for i in range(6)]


def test_package_search_with_rows_zero_returns_the_count_only(ckan_catalog, paging_sites):
    status, body = api(ckan_catalog, "package_search", q="type:site", rows=0)
    assert status == 200
    assert body["result"]["count"] >= 7 and body["result"]["results"] == []


def test_integer_fields_come_back_as_strings(ckan_catalog, paging_sites):
    dataset = ckan_catalog.action("package_show", id="paging-site-3")
    assert dataset["num_datasets"] == "30"
    found = ckan_catalog.search(q="name:paging-site-3")["results"][0]
    assert found["num_datasets"] == "30"


def test_a_bad_integer_is_a_validation_error(ckan_catalog):
    with pytest.raises(ValidationError) as raised:
        ckan_catalog.create_dataset(site("bad-int-site", num_datasets="many"), "site")
    assert raised.value.error_dict["num_datasets"] == ["Invalid integer"]


def test_site_dataset_keeps_free_extras_and_resource_urls(ckan_catalog):
    created = ckan_catalog.create_dataset(site(
        "extras-site", url="", extras=[{"key": "website", "value": "https://portal.example.org"}],
        resources=[{"url": "https://portal.example.org/api/3", "name": "API"}]), "site")
    shown = ckan_catalog.action("package_show", id=created["id"])
    assert shown["extras"] == [{"key": "website", "value": "https://portal.example.org"}]
    assert [r["url"] for r in shown["resources"]] == ["https://portal.example.org/api/3"]


def test_multiple_text_field_is_a_list(ckan_catalog):
    created = ckan_catalog.create_dataset(site("extensions-site", extensions=["datastore", "scheming"]), "site")
    assert ckan_catalog.action("package_show", id=created["id"])["extensions"] == ["datastore", "scheming"]


def test_package_patch_is_visible_in_show_and_search(ckan_catalog):
    ckan_catalog.create_dataset(site("patched-site", num_datasets=1), "site")
    ckan_catalog.action("package_patch", id="patched-site", num_datasets=2500)
    assert ckan_catalog.action("package_show", id="patched-site")["num_datasets"] == "2500"
    assert ckan_catalog.search(q="name:patched-site")["results"][0]["num_datasets"] == "2500"


def test_extension_datasets_are_a_type_of_their_own(ckan_catalog):
    ckan_catalog.seed_extension_datasets([{"name": "ckanext-demo", "title": "Demo", "stars": 12,
                                           "url": "https://github.com/example/ckanext-demo",
                                           "extension_type": "harvester"}])
    found = ckan_catalog.search(fq="dataset_type:extension", q="name:ckanext-demo")["results"]
    assert [(d["type"], d["stars"], d["extension_type"]) for d in found] == [("extension", "12", "harvester")]


def test_seeding_skips_names_that_exist(ckan_catalog, seed_site_datasets):
    datasets = [site("seeded-once-a"), site("seeded-once-b")]
    first = seed_site_datasets(datasets)
    second = seed_site_datasets(datasets)
    assert sorted(d["name"] for d in first.created) == ["seeded-once-a", "seeded-once-b"]
    assert (second.created, sorted(second.skipped)) == ([], ["seeded-once-a", "seeded-once-b"])


def test_organization_list_pages_with_limit_and_offset(ckan_catalog):
    for name in ("paging-org-a", "paging-org-b", "paging-org-c"):
        ckan_catalog.create_organization(name)
    everything = ckan_catalog.action("organization_list")
    status, body = api(ckan_catalog, "organization_list", limit=2, offset=2)
    assert status == 200
    assert body["result"] == everything[2:4]


def test_a_bad_sort_is_reported_by_ckan_as_a_bad_request(ckan_catalog):
    status, body = api(ckan_catalog, "package_search", sort="name sideways")
    assert status == 400
    assert body["error"] == {"__type": "Search Query Error",
                             "message": 'Search Query is invalid: \'Invalid "sort" parameter\''}


def test_bad_query_syntax_is_a_search_error_with_solrs_reason(ckan_catalog):
    status, body = api(ckan_catalog, "package_search", q="name:(unclosed")
    assert status == 409
    assert body["error"]["__type"] == "Search Error"
    assert "SyntaxError: Cannot parse" in body["error"]["message"]


def test_datastore_create_and_upsert(ckan_catalog):
    ckan_catalog.create_dataset(site("ckan-sites-metadata-test"), "site")
    created = ckan_catalog.action(
        "datastore_create", resource={"package_id": "ckan-sites-metadata-test", "name": "CKAN Sites Dynamic Metadata"},
        fields=[{"id": "site", "type": "text"}, {"id": "timestamp", "type": "timestamp"},
                {"id": "num_datasets", "type": "int"}],
        primary_key=["site", "timestamp"])
    resource_id = created["resource_id"]
    rows = [{"site": "demo", "timestamp": "2024-05-01T00:00:00", "num_datasets": 10},
            {"site": "demo", "timestamp": "2024-05-08T00:00:00", "num_datasets": 12}]
    ckan_catalog.action("datastore_upsert", resource_id=resource_id, method="insert", records=rows, force=True)
    with pytest.raises(ValidationError):  # insert of an existing key
        ckan_catalog.action("datastore_upsert", resource_id=resource_id, method="insert", records=rows[:1],
                            force=True)
    ckan_catalog.action("datastore_upsert", resource_id=resource_id, method="upsert", force=True,
                        records=[{"site": "demo", "timestamp": "2024-05-08T00:00:00", "num_datasets": 13}])
    result = ckan_catalog.action("datastore_search", resource_id=resource_id, sort="timestamp")
    assert result["total"] == 2
    assert [r["num_datasets"] for r in result["records"]] == [10, 13]


def test_stopping_and_starting_ckan(ckan_catalog, ckan_server):
    ckan_server.stop()
    assert not ckan_server.is_running()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{ckan_catalog.url}/api/3/action/status_show", timeout=5)
    ckan_server.start()
    assert api(ckan_catalog, "status_show")[0] == 200


def test_restarting_the_solr_stand_in_keeps_the_search_index(ckan_catalog, paging_sites, solr_standin):
    solr_standin.stop()
    status, body = api(ckan_catalog, "package_search", q="name:paging-site-*")
    assert (status, body["error"]["__type"]) == (500, "Search Connection Error")
    solr_standin.start()
    assert ckan_catalog.search(q="name:paging-site-*")["count"] == 7


def test_a_failing_search_index_is_a_search_error(ckan_catalog, solr_standin):
    solr_standin.inject_fault("select", status=503)
    status, body = api(ckan_catalog, "package_search", q="*:*")
    assert status == 409
    assert body["error"]["__type"] == "Search Error"


def test_organization_show_counts_its_datasets_through_the_index(ckan_catalog):
    ckan_catalog.create_organization("counted-org")
    ckan_catalog.create_datasets([site(f"counted-site-{i}", owner_org="counted-org") for i in range(3)], "site")
    assert ckan_catalog.action("organization_show", id="counted-org")["package_count"] == 3
    listed = ckan_catalog.action("organization_list", all_fields=True, organizations=["counted-org"])
    assert [(o["name"], o["package_count"]) for o in listed] == [("counted-org", 3)]


def test_free_text_and_facets_through_ckan(ckan_catalog):
    ckan_catalog.create_dataset(site("wetlands-portal", notes="Observations of coastal wetlands",
                                     tag_string="ecology,coast"), "site")
    result = ckan_catalog.search(q="coastal wetland", facet="true", **{"facet.field": '["tags"]'})
    assert [d["name"] for d in result["results"]] == ["wetlands-portal"]
    assert result["facets"]["tags"] == {"coast": 1, "ecology": 1}
