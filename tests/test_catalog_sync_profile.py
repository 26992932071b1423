"""Site profile fields reach the catalog only where it has no value (people's curated
values stand) unless CATALOG_PROFILE_OVERWRITE says otherwise."""
from __future__ import annotations

import uuid

from itemadapter import ItemAdapter

from ckancrawl.catalog.client import CatalogClient
from ckancrawl.catalog.fields import SITE_FIELDS, known_values
from ckancrawl.catalog.sync import UNCHANGED, UPDATED, DatasetSync
from ckancrawl.items import SiteSnapshot

PROFILE = ("site_type", "location", "latitude", "longitude", "language", "notes")


def snapshot(name: str, **values) -> dict:
    item = SiteSnapshot(site=name, run_timestamp="2026-11-22T03:00:00Z", source="catalog", catalog_dataset=name,
                        num_datasets=5, site_type="Government", country="DE", country_name="Germany",
                        latitude=51.1638175, longitude=10.4478313, language="de",
                        home_description="Offene Daten der Stadt", **values)
    return known_values(ItemAdapter(item), SITE_FIELDS)


def create(ckan_catalog, **fields) -> str:
    name = f"profile-{uuid.uuid4().hex[:10]}"
    ckan_catalog.create_dataset({"name": name, "title": name, "url": "https://data.stadt.de", **fields}, "site")
    return name


def profile(ckan_catalog, name):
    dataset = ckan_catalog.action("package_show", id=name)
    return {field: dataset.get(field) or None for field in PROFILE}


def client(ckan_catalog):
    return CatalogClient(ckan_catalog.url, ckan_catalog.api_key, retry_backoff=0.05, timeout=10)


def test_empty_profile_fields_are_filled_in(ckan_catalog):
    name = create(ckan_catalog)
    result = DatasetSync(client(ckan_catalog)).sync(name, snapshot(name), SITE_FIELDS)
    assert result.outcome == UPDATED
    assert profile(ckan_catalog, name) == {
        "site_type": "Government", "location": "Germany", "latitude": "51.1638175", "longitude": "10.4478313",
        "language": "de", "notes": "Offene Daten der Stadt",
    }


def test_curated_values_stand(ckan_catalog):
    curated = {"site_type": "Research", "location": "Hamburg, Germany", "notes": "Written by a person."}
    name = create(ckan_catalog, num_datasets=5, **curated)
    result = DatasetSync(client(ckan_catalog)).sync(name, snapshot(name), SITE_FIELDS)
    assert set(result.changes) == {"latitude", "longitude", "language"}
    stored = profile(ckan_catalog, name)
    assert {k: stored[k] for k in curated} == curated


def test_overwrite_setting_replaces_curated_values(ckan_catalog):
    name = create(ckan_catalog, num_datasets=5, site_type="Research", location="Somewhere")
    result = DatasetSync(client(ckan_catalog), overwrite_profile=True).sync(name, snapshot(name), SITE_FIELDS)
    assert result.outcome == UPDATED
    assert profile(ckan_catalog, name)["site_type"] == "Government"
    assert profile(ckan_catalog, name)["location"] == "Germany"


def test_a_site_type_without_a_catalog_choice_is_not_written(ckan_catalog):
    name = create(ckan_catalog, num_datasets=5, latitude="51.1638175", longitude="10.4478313", language="de",
                  location="Germany", notes="n")
    known = snapshot(name)
    known_healthcare = known_values(ItemAdapter(SiteSnapshot(
        site=name, run_timestamp="2026-11-22T03:00:00Z", source="catalog", site_type="Healthcare")), SITE_FIELDS)
    assert "site_type" in known and "site_type" not in known_healthcare
    result = DatasetSync(client(ckan_catalog)).sync(name, known_healthcare, SITE_FIELDS)
    assert result.outcome == UNCHANGED
    assert profile(ckan_catalog, name)["site_type"] is None
