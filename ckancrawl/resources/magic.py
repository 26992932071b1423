"""What a file is, from its first bytes (magic numbers and a look inside containers).

:func:`sniff` takes the start of a file (the pipeline keeps the first
:data:`SNIFF_BYTES`) and returns a canonical name of :mod:`ckancrawl.resources.formats`,
or None when the bytes are not recognised. It looks:

- at binary signatures (PDF, ZIP, OLE2, gzip, Parquet, SQLite, HDF5, TIFF, images...);
- inside ZIP archives, at the names of the first entries: an XLSX has ``xl/``, a DOCX
  ``word/``, an ODF file a ``mimetype`` entry, a KMZ a ``.kml``, a zipped shapefile
  ``.shp``/``.dbf``/``.shx``, a GTFS feed ``stops.txt``. Otherwise it says ``ZIP``;
- inside OLE2 compound files, for the stream names of Excel, Word and PowerPoint;
- at the root element of XML (RDF, KML, GML, GPX, WMS/WFS/WMTS/WCS capabilities,
  Atom, RSS, SVG, XSD, HTML) and at the shape of JSON (GeoJSON, TopoJSON, JSON-LD);
- at text: ``TXT`` when the bytes read as text. CSV is not guessed from bytes (any
  text with commas would be one): the Content-Type, URL or declared format refine
  ``TXT`` to ``CSV``.
"""
from __future__ import annotations

import re
import struct

#: How much of the start of a file sniffing needs (also bounds decoded gzip/deflate).
SNIFF_BYTES = 64 * 1024

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "PDF"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2"),
    (0, b"\x1f\x8b", "GZIP"),
    (0, b"\xfd7zXZ\x00", "XZ"),
    (0, b"7z\xbc\xaf\x27\x1c", "7Z"),
    (0, b"Rar!\x1a\x07", "RAR"),
    (0, b"PAR1", "PARQUET"),
    (0, b"Obj\x01", "AVRO"),
    (0, b"ORC", "ORC"),
    (0, b"ARROW1", "ARROW"),
    (0, b"FEA1", "ARROW"),
    (0, b"\x89HDF\r\n\x1a\n", "HDF5"),
    (0, b"CDF\x01", "NETCDF"),
    (0, b"CDF\x02", "NETCDF"),
    (0, b"CDF\x05", "NETCDF"),
    (0, b"GRIB", "GRIB"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"II+\x00", "TIFF"),
    (0, b"MM\x00+", "TIFF"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"\x00\x00\x27\x0a", "SHP"),
    (0, b"\x00\x01\x00\x00Standard Jet DB", "MDB"),
    (0, b"\x00\x01\x00\x00Standard ACE DB", "MDB"),
    (0, b"LASF", "LAS"),
    (0, b"$FL2", "SAV"),
    (0, b"$FL3", "SAV"),
    (0, b"fgb\x03", "FGB"),
    (0, b"{\\rtf", "RTF"),
    (0, b"<stata_dta>", "DTA"),
    (0, b"RDX2\n", "RDATA"),
    (0, b"RDX3\n", "RDATA"),
    (257, b"ustar", "TAR"),
)

_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.spreadsheet": "ODS",
    b"application/vnd.oasis.opendocument.text": "ODT",
    b"application/vnd.oasis.opendocument.presentation": "ODP",
}
_XML_ROOTS = {
    "rdf": "RDF", "kml": "KML", "gpx": "GPX", "wms_capabilities": "WMS", "wmt_ms_capabilities": "WMS",
    "wfs_capabilities": "WFS", "wcs_capabilities": "WCS", "coveragedescription": "WCS", "feed": "ATOM",
    "rss": "RSS", "svg": "SVG", "schema": "XSD", "html": "HTML", "osm": "OSM",
}
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def sniff(head: bytes) -> str | None:
    """The format of a file that starts with ``head``; None if not recognised."""
    if not head:
        return None
    for offset, signature, name in _SIGNATURES:
        if head.startswith(signature, offset):
            if name == "OLE2":
                return _ole2_kind(head)
            return name
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "BZ2"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return _zip_kind(head)
    if head.startswith(b"SQLite format 3\x00"):
        return _sqlite_kind(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"AC10") and head[4:6].isdigit():
        return "DWG"
    if b"OSMHeader" in head[:32]:
        return "PBF"
    return _text_kind(head)


def zip_entry_names(head: bytes, limit: int = 200) -> list[str]:
    """Names of the ZIP entries whose local headers lie within ``head``."""
    names = []
    for match in re.finditer(re.escape(_ZIP_LOCAL_HEADER), head):
        start = match.start()
        if start + 30 > len(head):
            break
        name_length, extra_length = struct.unpack_from("<HH", head, start + 26)
        raw = head[start + 30:start + 30 + name_length]
        if len(raw) < name_length:
            break
        names.append(raw.decode("utf-8", "replace"))
        if len(names) >= limit:
            break
    return names


def _zip_kind(head: bytes) -> str:
    names = zip_entry_names(head)
    if names[:1] == ["mimetype"]:
        start = head.find(b"mimetype") + len(b"mimetype")
        declared = head[start:start + 80]
        for mimetype, name in _ODF_MIMETYPES.items():
            if declared.startswith(mimetype):
                return name
    lowered = [n.lower() for n in names]
    if any(n.startswith("xl/") for n in lowered):
        return "XLSX"
    if any(n.startswith("word/") for n in lowered):
        return "DOCX"
    if any(n.startswith("ppt/") for n in lowered):
        return "PPTX"
    if any(n.endswith((".shp", ".shx", ".dbf", ".prj")) for n in lowered):
        return "SHP"
    if any(n.endswith(".kml") for n in lowered):
        return "KMZ"
    basenames = {n.rsplit("/", 1)[-1] for n in lowered}
    if "stops.txt" in basenames or {"agency.txt", "routes.txt"} & basenames:
        return "GTFS"
    return "ZIP"


def _ole2_kind(head: bytes) -> str:
    # Directory entries hold stream names in UTF-16LE; in small files they are near the start.
    if "Workbook".encode("utf-16-le") in head or "Book\x00".encode("utf-16-le") in head:
        return "XLS"
    if "WordDocument".encode("utf-16-le") in head:
        return "DOC"
    if "PowerPoint Document".encode("utf-16-le") in head:
        return "PPT"
    return "OLE2"


def _sqlite_kind(head: bytes) -> str:
    application_id = head[68:72]
    if application_id in (b"GPKG", b"GP10", b"GP11"):
        return "GPKG"
    if application_id == b"MPBX":
        return "MBTILES"
    return "SQLITE"


def _text_kind(head: bytes) -> str | None:
    text = _as_text(head)
    if text is None:
        return None
    stripped = text.lstrip()
    if not stripped:
        return "TXT"
    first = stripped[:1]
    if first == "<":
        return _markup_kind(stripped)
    if first in "{[":
        return _json_kind(stripped)
    if stripped.startswith("BEGIN:VCALENDAR"):
        return "ICS"
    if stripped.startswith("@prefix") or stripped.startswith("@base"):
        return "TTL"
    return "TXT"


def _as_text(head: bytes) -> str | None:
    """The bytes as text when they look like text (no NUL, valid UTF-8 or mostly printable)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return head[2:len(head) - (len(head) % 2)].decode("utf-16-le" if head[0] == 0xFF else "utf-16-be")
        except UnicodeDecodeError:
            return None
    if head.startswith(_BOMS[0]):
        head = head[3:]
    sample = head[:8192]
    if b"\x00" in sample:
        return None
    try:
        return sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 3:  # a character cut by the end of the sample
            return sample[:error.start].decode("utf-8")
    # Latin-1 and the like: text if almost every byte is printable.
    printable = sum(1 for b in sample if b >= 0x20 or b in b"\t\r\n\f")
    return sample.decode("latin-1") if printable >= 0.97 * len(sample) else None


def _markup_kind(text: str) -> str:
    lowered = text[:4096].lower()
    if lowered.startswith("<!doctype html") or re.match(r"<(html|head|body)[\s>]", lowered):
        return "HTML"
    root = _xml_root(lowered)
    if root is None:
        return "XML" if lowered.startswith("<?xml") else "HTML" if "<html" in lowered else "XML"
    local = root.rsplit(":", 1)[-1]
    if local == "capabilities":
        return "WMTS" if "wmts" in lowered else "WCS" if "wcs" in lowered else "XML"
    if local == "featurecollection":
        return "GML" if "gml" in lowered else "XML"
    return _XML_ROOTS.get(local, "XML")


def _xml_root(lowered: str) -> str | None:
    """The root element's name, after the XML declaration, comments, PIs and doctype."""
    position = 0
    while True:
        match = re.compile(r"\s*<").match(lowered, position)
        if not match:
            return None
        position = match.end()
        if lowered.startswith("?", position):
            terminator = "?>"
        elif lowered.startswith("!--", position):
            terminator = "-->"
        elif lowered.startswith("!", position):
            terminator = ">"
        else:
            name = re.compile(r"[a-z_][\w.:-]*").match(lowered, position)
            return name.group(0) if name else None
        end = lowered.find(terminator, position)
        if end < 0:
            return None
        position = end + len(terminator)


def _json_kind(text: str) -> str:
    sample = re.sub(r"\s+", "", text[:16384])
    if re.search(r'"type":"(featurecollection|feature)"', sample, re.IGNORECASE):
        return "GEOJSON"
    if '"type":"Topology"' in sample:
        return "TOPOJSON"
    if '"@context"' in sample:
        return "JSON-LD"
    return "JSON"
