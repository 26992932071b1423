"""A file's format from its first bytes."""
from __future__ import annotations

import gzip
import io
import sqlite3
import zipfile
from pathlib import Path

import pytest

from ckancrawl.resources.magic import SNIFF_BYTES, sniff, zip_entry_names


def zipped(*names: str, first: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if first:
            archive.writestr(zipfile.ZipInfo(first[0]), first[1], compress_type=zipfile.ZIP_STORED)
        for name in names:
            archive.writestr(name, "x" * 200)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "head, name",
    [
        (b"%PDF-1.7\n%\xe2\xe3", "PDF"),
        (zipped("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/sheet1.xml"), "XLSX"),
        (zipped("[Content_Types].xml", "word/document.xml"), "DOCX"),
        (zipped("[Content_Types].xml", "ppt/presentation.xml"), "PPTX"),
        (zipped("content.xml", first=("mimetype", "application/vnd.oasis.opendocument.spreadsheet")), "ODS"),
        (zipped("content.xml", first=("mimetype", "application/vnd.oasis.opendocument.text")), "ODT"),
        (zipped("roads.shp", "roads.shx", "roads.dbf", "roads.prj"), "SHP"),
        (zipped("doc.kml", "files/icon.png"), "KMZ"),
        (zipped("gtfs/agency.txt", "gtfs/stops.txt", "gtfs/routes.txt"), "GTFS"),
        (zipped("table.csv"), "ZIP"),
        (b"PK\x05\x06" + bytes(18), "ZIP"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "Workbook".encode("utf-16-le"), "XLS"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "WordDocument".encode("utf-16-le"), "DOC"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "OLE2"),
        (gzip.compress(b"a,b\n1,2\n"), "GZIP"),
        (b"PAR1\x15\x00", "PARQUET"),
        (b"\x89HDF\r\n\x1a\n", "HDF5"),
        (b"CDF\x01\x00", "NETCDF"),
        (b"II*\x00\x08\x00", "TIFF"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x00\x00\x27\x0a\x00\x00", "SHP"),
        (b"{\\rtf1\\ansi", "RTF"),
        (b"BZh91AY&SY", "BZ2"),
        (b"\n  <!DOCTYPE html>\n<html><head>", "HTML"),
        (b"<html lang='en'><head>", "HTML"),
        (b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'>", "HTML"),
        (b"<?xml version='1.0'?><root><a/></root>", "XML"),
        (b"<?xml version='1.0'?>\n<!-- made by hand -->\n<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>", "RDF"),
        (b"<?xml version='1.0'?><kml xmlns='http://www.opengis.net/kml/2.2'>", "KML"),
        (b"<?xml version='1.0'?><gpx version='1.1'>", "GPX"),
        (b"<?xml version='1.0'?><WMS_Capabilities version='1.3.0'>", "WMS"),
        (b"<?xml version='1.0'?><!DOCTYPE WMT_MS_Capabilities SYSTEM 'x.dtd'><WMT_MS_Capabilities>", "WMS"),
        (b"<wfs:WFS_Capabilities xmlns:wfs='http://www.opengis.net/wfs'>", "WFS"),
        (b"<Capabilities xmlns='http://www.opengis.net/wmts/1.0'>", "WMTS"),
        (b"<wfs:FeatureCollection xmlns:gml='http://www.opengis.net/gml'>", "GML"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'>", "ATOM"),
        (b"<rss version='2.0'>", "RSS"),
        (b'{"type": "FeatureCollection", "features": []}', "GEOJSON"),
        (b'{ "type" : "Feature", "geometry": null }', "GEOJSON"),
        (b'{"type":"Topology","objects":{}}', "TOPOJSON"),
        (b'{"@context": "https://schema.org", "@type": "Dataset"}', "JSON-LD"),
        (b'[{"a": 1}, {"a": 2}]', "JSON"),
        (b'\xef\xbb\xbf{"a": 1}', "JSON"),
        (b"@prefix dcat: <http://www.w3.org/ns/dcat#> .", "TTL"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0", "ICS"),
        (b"name;value\nCaf\xe9;1\n", "TXT"),
        ("région,valeur\nÎle-de-France,1\n".encode("utf-8"), "TXT"),
        ("a,b\n".encode("utf-16"), "TXT"),
    ],
)
def test_sniffing(head, name):
    assert sniff(head) == name


def test_unknown_binary_and_empty_input_are_none():
    assert sniff(bytes(range(256)) * 4) is None
    assert sniff(b"") is None


def test_a_geopackage_is_told_from_sqlite_by_its_application_id(tmp_path: Path):
    for application_id, name in ((0x47504B47, "GPKG"), (0, "SQLITE")):
        path = tmp_path / f"{name}.db"
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA application_id = {application_id}")
            db.execute("CREATE TABLE t (a)")
        assert sniff(path.read_bytes()[:SNIFF_BYTES]) == name


def test_zip_entry_names_stop_at_the_end_of_the_sniffed_bytes():
    archive = zipped(*(f"dir/file{n}.csv" for n in range(50)))
    assert zip_entry_names(archive)[:2] == ["dir/file0.csv", "dir/file1.csv"]
    cut = zip_entry_names(archive[:300])
    assert 0 < len(cut) < 50
    assert cut == [f"dir/file{n}.csv" for n in range(len(cut))]  # no name cut in half
