"""The canonical format table: what portals declare, what servers say, what URLs name."""
from __future__ import annotations

import pytest

from ckancrawl.resources.formats import (
    BY_NAME,
    FORMATS,
    choose_format,
    family_chain,
    format_of_declared,
    format_of_extension,
    format_of_mimetype,
    url_format_hint,
)


@pytest.mark.parametrize(
    "declared, canonical",
    [
        (".pdf", "PDF"), ("PDF", "PDF"), ("pdf ", "PDF"), ("application/pdf", "PDF"),
        ("Excel", "XLS"), ("xisx", "XLSX"), ("XLSX", "XLSX"), (".xlsx", "XLSX"), ("xlxs", "XLSX"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XLSX"),
        ("CSV", "CSV"), ("text/csv; charset=utf-8", "CSV"), ("csv file", "CSV"), ("Comma Separated Values", "CSV"),
        ("GeoJSON", "GEOJSON"), ("geo+json", "GEOJSON"), ("JSON", "JSON"), ("application/json", "JSON"),
        ("RDF/XML", "RDF"), ("Turtle", "TTL"), ("XML", "XML"), ("ZIP", "ZIP"), ("Shapefile", "SHP"),
        ("ESRI Shapefile", "SHP"), ("Shapefile (zip)", "SHP"), ("KML", "KML"), ("kmz", "KMZ"),
        ("WMS", "WMS"), ("OGC:WMS", "WMS"), ("WMS 1.3.0", "WMS"), ("wfs", "WFS"), ("Esri REST", "ARCGIS"),
        ("API", "API"), ("REST API", "API"), ("HTML", "HTML"), ("web page", "HTML"), ("TXT", "TXT"),
        ("DOC", "DOC"), ("docx", "DOCX"), ("ODS", "ODS"), ("Parquet", "PARQUET"), ("GeoPackage", "GPKG"),
        ("NetCDF", "NETCDF"), ("GeoTIFF", "GEOTIFF"), ("https://example.org/files/data.geojson", "GEOJSON"),
    ],
)
def test_a_declared_format_maps_to_one_canonical_name(declared, canonical):
    assert format_of_declared(declared) == canonical


@pytest.mark.parametrize("declared", ["", "   ", "CSV, XLS", "zip (csv)", "data", "other", None, 12, ["CSV"]])
def test_an_unknown_or_ambiguous_declared_format_is_none(declared):
    assert format_of_declared(declared) is None


@pytest.mark.parametrize(
    "content_type, canonical",
    [
        ("text/csv", "CSV"), ("TEXT/CSV; charset=UTF-8", "CSV"), ("application/vnd.ms-excel", "XLS"),
        ("application/vnd.example+json", "JSON"), ("application/vnd.example+xml", "XML"),
        ("text/x-anything", "TXT"), ("image/tiff; application=geotiff", "GEOTIFF"),
        ("application/octet-stream", None), ("application/force-download", None), ("", None), (None, None),
        ("application/x-something", None),
    ],
)
def test_content_types(content_type, canonical):
    assert format_of_mimetype(content_type) == canonical


@pytest.mark.parametrize(
    "url, found",
    [
        ("http://a.org/dir/data.CSV", ("CSV", "csv")),
        ("http://a.org/data.tar.gz", ("GZIP", "gz")),
        ("http://a.org/f%C3%BCr%20alle.xlsx?download=1", ("XLSX", "xlsx")),
        ("http://a.org/geoserver/ows?service=WMS&request=GetCapabilities", ("WMS", "service=WMS")),
        ("http://a.org/export.php?format=csv", ("CSV", "format=csv")),
        ("http://a.org/download.aspx", (None, None)),
        ("http://a.org/dataset/7/resource/9", (None, None)),
        ("http://a.org/v1.2/", (None, None)),
    ],
)
def test_what_a_url_says_about_its_format(url, found):
    assert url_format_hint(url) == found


def test_the_bytes_win_over_everything_less_trusted():
    assert choose_format({"magic": "HTML", "content_type": "CSV", "extension": "CSV", "declared": "CSV"}) == ("HTML", "magic")
    assert choose_format({"magic": "PDF", "declared": "XLS"}) == ("PDF", "magic")


def test_a_generic_container_is_refined_by_a_less_trusted_member_of_its_family():
    assert choose_format({"magic": "ZIP", "declared": "SHP"}) == ("SHP", "declared")
    assert choose_format({"magic": "XML", "extension": None, "declared": "WMS"}) == ("WMS", "declared")
    assert choose_format({"magic": "TXT", "content_type": "TXT", "extension": "CSV"}) == ("CSV", "extension")
    assert choose_format({"magic": "OLE2", "declared": "XLS"}) == ("XLS", "declared")


def test_a_refinement_must_belong_to_the_family():
    assert choose_format({"magic": "ZIP", "extension": "CSV"}) == ("ZIP", "magic")
    assert choose_format({"magic": "TXT", "declared": "PDF"}) == ("TXT", "magic")


def test_without_bytes_the_content_type_comes_first_then_the_url_then_the_declaration():
    assert choose_format({"content_type": "JSON", "extension": "CSV", "declared": "XLS"}) == ("JSON", "content_type")
    assert choose_format({"extension": "CSV", "declared": "XLS"}) == ("CSV", "extension")
    assert choose_format({"declared": "XLS"}) == ("XLS", "declared")
    assert choose_format({}) == (None, None)


def test_the_table_is_consistent():
    names = [f.name for f in FORMATS]
    assert len(names) == len(set(names))
    for fmt in FORMATS:
        assert fmt.family is None or fmt.family in BY_NAME, fmt
        assert fmt.name not in family_chain(fmt.name)
        for extension in fmt.extensions:
            assert format_of_extension(extension) == fmt.name
        for alias in fmt.aliases:
            assert format_of_declared(alias) == fmt.name, alias


def test_the_table_covers_the_usual_open_data_formats():
    for name in ("CSV", "XLS", "XLSX", "JSON", "GEOJSON", "XML", "RDF", "PDF", "ZIP", "SHP", "KML", "KMZ", "WMS",
                 "WFS", "API", "HTML", "TXT", "DOC", "DOCX", "ODS", "PARQUET"):
        assert name in BY_NAME
