"""One canonical name per file format, and how to find it in what portals and servers say.

``FORMATS`` is the table: each canonical name with the spellings portals declare
(``"Excel"``, ``"xisx"``, ``".pdf"``...), its media types and its file extensions. Names
are upper case (``CSV``, ``XLSX``, ``GEOJSON``, ``WMS``); the table covers the formats of
open-data portals: tables, spreadsheets, documents, linked data, geodata and map
services, archives, scientific and statistical files, images.

A format's ``family`` is the generic container its bytes show: an XLSX file is a ZIP
archive, GeoJSON is JSON, WMS capabilities are XML, CSV is text. When the most trusted
evidence only names the family (the magic numbers say "ZIP"), a less trusted source
that names a member of that family (the URL ends in ``.xlsx``) refines it: see
:func:`choose_format`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

#: Where a format came from, most trusted first.
SOURCES = ("magic", "content_type", "extension", "declared")


@dataclass(frozen=True)
class Format:
    name: str
    #: The generic container its bytes show (a canonical name), if any.
    family: str | None = None
    #: Declared spellings, compared after :func:`_clean` (lower case, single spaces).
    aliases: tuple[str, ...] = ()
    mimetypes: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()


def _f(name: str, family: str | None = None, aliases: str = "", mimetypes: str = "", extensions: str = "") -> Format:
    split = lambda text: tuple(part.strip() for part in text.split("|") if part.strip())  # noqa: E731
    return Format(name, family, split(aliases), split(mimetypes), split(extensions))


FORMATS: tuple[Format, ...] = (
    # -- tables and text ------------------------------------------------------------------
    _f("CSV", "TXT", "csv|comma separated values|comma-separated values|csv file|cvs|csv format|text csv",
       "text/csv|application/csv|text/x-csv|application/x-csv|text/comma-separated-values|text/x-comma-separated-values",
       "csv"),
    _f("TSV", "TXT", "tsv|tab separated values|tab-separated values|tab delimited|tab", "text/tab-separated-values|text/tsv",
       "tsv|tab"),
    _f("TXT", None, "txt|text|plain text|text file|ascii", "text/plain", "txt|text"),
    _f("XLS", "OLE2", "xls|excel|ms excel|microsoft excel|excel 97-2003|excel file|excel spreadsheet|msexcel|xlt",
       "application/vnd.ms-excel|application/excel|application/x-excel|application/x-msexcel|application/msexcel",
       "xls|xlt"),
    _f("XLSX", "ZIP", "xlsx|xisx|xlxs|xslx|xlsx file|excel xlsx|excel (xlsx)|excel 2007|excel 2010|openxml spreadsheet"
       "|office open xml spreadsheet|xlsm|ms excel (xlsx)",
       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet|application/vnd.ms-excel.sheet.macroenabled.12",
       "xlsx|xlsm"),
    _f("ODS", "ZIP", "ods|opendocument spreadsheet|open document spreadsheet|libreoffice calc|openoffice calc",
       "application/vnd.oasis.opendocument.spreadsheet", "ods"),
    _f("JSON", None, "json|json file|json format|application json", "application/json|text/json|application/x-json",
       "json"),
    _f("GEOJSON", "JSON", "geojson|geo json|geo+json", "application/geo+json|application/vnd.geo+json", "geojson"),
    _f("JSON-LD", "JSON", "json-ld|jsonld|json ld", "application/ld+json", "jsonld"),
    _f("TOPOJSON", "JSON", "topojson|topo json", "application/topo+json", "topojson"),
    _f("NDJSON", "TXT", "ndjson|jsonl|json lines|jsonlines|newline delimited json",
       "application/x-ndjson|application/jsonl|application/x-jsonlines", "ndjson|jsonl"),
    _f("XML", None, "xml|xml file|xml format", "application/xml|text/xml", "xml"),
    _f("YAML", "TXT", "yaml|yml", "application/yaml|application/x-yaml|text/yaml|text/x-yaml", "yaml|yml"),
    _f("MARKDOWN", "TXT", "markdown|md", "text/markdown", "md|markdown"),
    _f("SQL", "TXT", "sql|sql dump", "application/sql", "sql"),
    _f("ICS", "TXT", "ics|ical|icalendar", "text/calendar", "ics"),
    # -- documents ------------------------------------------------------------------------
    _f("PDF", None, "pdf|adobe pdf|pdf file|acrobat|pdf document", "application/pdf|application/x-pdf", "pdf"),
    _f("DOC", "OLE2", "doc|word|ms word|microsoft word|word document", "application/msword", "doc|dot"),
    _f("DOCX", "ZIP", "docx|word 2007|docx file|ms word (docx)",
       "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    _f("ODT", "ZIP", "odt|opendocument text", "application/vnd.oasis.opendocument.text", "odt"),
    _f("PPT", "OLE2", "ppt|powerpoint|ms powerpoint", "application/vnd.ms-powerpoint", "ppt|pps"),
    _f("PPTX", "ZIP", "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
    _f("ODP", "ZIP", "odp|opendocument presentation", "application/vnd.oasis.opendocument.presentation", "odp"),
    _f("RTF", None, "rtf|rich text", "application/rtf|text/rtf", "rtf"),
    _f("HTML", None, "html|htm|xhtml|web page|webpage|website|web site|homepage|html page|landing page",
       "text/html|application/xhtml+xml", "html|htm|xhtml|shtml"),
    # OLE2 compound files: XLS, DOC or PPT when nothing says which.
    _f("OLE2", None, "ole2", "application/x-ole-storage|application/vnd.ms-office", ""),
    # -- linked data ------------------------------------------------------------------------
    _f("RDF", "XML", "rdf|rdf/xml|rdf xml|rdf+xml|rdfxml|owl", "application/rdf+xml", "rdf|owl"),
    _f("TTL", "TXT", "ttl|turtle|rdf/turtle|rdf turtle", "text/turtle|application/x-turtle", "ttl"),
    _f("N3", "TXT", "n3|notation3|rdf/n3", "text/n3|text/rdf+n3", "n3"),
    _f("NT", "TXT", "nt|n-triples|ntriples|rdf/n-triples", "application/n-triples", "nt"),
    _f("NQ", "TXT", "nq|n-quads|nquads", "application/n-quads", "nq"),
    _f("SPARQL", None, "sparql|sparql endpoint|sparql query|sparql-query", "application/sparql-query", "rq|sparql"),
    # -- services ------------------------------------------------------------------------------
    _f("WMS", "XML", "wms|ogc wms|ogc:wms|web map service|wms service|wms server|wms_srvc",
       "application/vnd.ogc.wms_xml", ""),
    _f("WFS", "XML", "wfs|ogc wfs|ogc:wfs|web feature service|wfs service", "", ""),
    _f("WMTS", "XML", "wmts|ogc wmts|web map tile service", "", ""),
    _f("WCS", "XML", "wcs|ogc wcs|web coverage service", "", ""),
    _f("ARCGIS", "JSON", "esri rest|arcgis rest|arcgis geoservices rest api|arcgis map service|arcgis feature service"
       "|esri rest api|arcgis|mapserver|featureserver|imageserver|arcgis online map", "", ""),
    _f("API", None, "api|rest|rest api|web api|webservice|web service|json api|ckan api|datastore api|odata|api link"
       "|query tool|data api", "", ""),
    # -- geodata ------------------------------------------------------------------------------
    _f("SHP", "ZIP", "shp|shapefile|shape file|esri shapefile|shape|zipped shapefile|shp zip|zip shapefile"
       "|shapefile zip|esri shape", "application/x-shapefile|application/x-esri-shape|application/vnd.shp", "shp"),
    _f("KML", "XML", "kml|google earth kml", "application/vnd.google-earth.kml+xml", "kml"),
    _f("KMZ", "ZIP", "kmz|google earth kmz", "application/vnd.google-earth.kmz", "kmz"),
    _f("GML", "XML", "gml|geography markup language", "application/gml+xml", "gml"),
    _f("GPX", "XML", "gpx", "application/gpx+xml", "gpx"),
    _f("GPKG", "SQLITE", "gpkg|geopackage|ogc geopackage", "application/geopackage+sqlite3", "gpkg"),
    _f("MBTILES", "SQLITE", "mbtiles", "application/vnd.mapbox-vector-tile+sqlite", "mbtiles"),
    _f("FGB", None, "fgb|flatgeobuf", "application/flatgeobuf", "fgb"),
    _f("GEOTIFF", "TIFF", "geotiff|geo tiff|geotif", "image/geotiff|image/tiff; application=geotiff", ""),
    _f("GTFS", "ZIP", "gtfs|gtfs feed|gtfs zip|gtfs static", "", ""),
    _f("OSM", "XML", "osm|openstreetmap xml", "application/x-osm+xml", "osm"),
    _f("PBF", None, "pbf|osm pbf", "application/x-protobuf", "pbf"),
    _f("LAS", None, "las|laz|lidar|lidar las", "application/vnd.las", "las|laz"),
    _f("DWG", None, "dwg|autocad|autocad dwg", "image/vnd.dwg|application/acad", "dwg"),
    _f("DXF", "TXT", "dxf", "image/vnd.dxf|application/dxf", "dxf"),
    _f("DBF", None, "dbf|dbase", "application/dbf|application/x-dbf|application/dbase", "dbf"),
    # -- archives -------------------------------------------------------------------------
    _f("ZIP", None, "zip|zip file|zipped|zip archive|compressed|compressed file",
       "application/zip|application/x-zip-compressed|application/x-zip|multipart/x-zip", "zip"),
    _f("GZIP", None, "gzip|gz|tgz|tar.gz|gzipped", "application/gzip|application/x-gzip", "gz|tgz"),
    _f("TAR", None, "tar", "application/x-tar", "tar"),
    _f("BZ2", None, "bz2|bzip2|bzip", "application/x-bzip2", "bz2"),
    _f("XZ", None, "xz", "application/x-xz", "xz"),
    _f("7Z", None, "7z|7zip|7-zip", "application/x-7z-compressed", "7z"),
    _f("RAR", None, "rar", "application/vnd.rar|application/x-rar-compressed", "rar"),
    # -- columnar, databases, scientific and statistical ----------------------------------------
    _f("PARQUET", None, "parquet|apache parquet", "application/vnd.apache.parquet|application/x-parquet", "parquet"),
    _f("AVRO", None, "avro|apache avro", "application/avro|application/vnd.apache.avro", "avro"),
    _f("ORC", None, "orc|apache orc", "", "orc"),
    _f("ARROW", None, "arrow|feather|apache arrow", "application/vnd.apache.arrow.file", "arrow|feather"),
    _f("SQLITE", None, "sqlite|sqlite3|sqlite database", "application/vnd.sqlite3|application/x-sqlite3",
       "sqlite|sqlite3"),
    _f("MDB", None, "mdb|accdb|access|ms access|microsoft access",
       "application/x-msaccess|application/vnd.ms-access", "mdb|accdb"),
    _f("NETCDF", "HDF5", "netcdf|netcdf4|nc|netcdf-4", "application/x-netcdf|application/netcdf", "nc|nc4|cdf"),
    _f("HDF5", None, "hdf5|hdf|h5", "application/x-hdf5|application/x-hdf", "h5|hdf5|he5|hdf"),
    _f("GRIB", None, "grib|grib2|grib1", "application/x-grib", "grib|grb|grib2|grb2"),
    _f("SAV", None, "sav|spss|spss sav", "application/x-spss-sav", "sav"),
    _f("DTA", None, "dta|stata", "application/x-stata-dta", "dta"),
    _f("SAS7BDAT", None, "sas7bdat|sas", "application/x-sas-data", "sas7bdat"),
    _f("RDATA", None, "rdata|rda|rds|r data", "application/x-r-data", "rdata|rda|rds"),
    # -- images --------------------------------------------------------------------------------
    _f("TIFF", None, "tiff|tif", "image/tiff", "tif|tiff"),
    _f("JPEG", None, "jpeg|jpg", "image/jpeg|image/jpg|image/pjpeg", "jpg|jpeg"),
    _f("PNG", None, "png", "image/png", "png"),
    _f("GIF", None, "gif", "image/gif", "gif"),
    _f("WEBP", None, "webp", "image/webp", "webp"),
    _f("SVG", "XML", "svg", "image/svg+xml", "svg"),
    # -- feeds and schemas ------------------------------------------------------------------
    _f("ATOM", "XML", "atom|atom feed", "application/atom+xml", "atom"),
    _f("RSS", "XML", "rss|rss feed|georss", "application/rss+xml", "rss"),
    _f("XSD", "XML", "xsd|xml schema", "application/xsd+xml", "xsd"),
)

BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}

#: Media types that say nothing about the content.
UNINFORMATIVE_MIMETYPES = frozenset({
    "application/octet-stream", "binary/octet-stream", "application/binary", "application/unknown",
    "application/x-download", "application/force-download", "application/download", "application/save",
    "application/x-unknown", "unknown/unknown", "application/x-octet-stream", "content/unknown",
})
#: Extensions of server-side scripts: the path's extension says nothing about the answer.
SCRIPT_EXTENSIONS = frozenset({"php", "asp", "aspx", "ashx", "jsp", "cgi", "do", "action", "pl", "py", "cfm", "dll"})
#: Query parameters that name the answer's format (``?format=csv``, ``?service=WMS``).
FORMAT_PARAMETERS = ("format", "f", "outputformat", "output_format", "filetype", "service")


def _clean(text: str) -> str:
    text = text.strip().strip("\"'").strip().lower()
    text = re.sub(r"\s+", " ", text)
    return text.lstrip(".").strip()


def _index() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    aliases: dict[str, str] = {}
    mimetypes: dict[str, str] = {}
    extensions: dict[str, str] = {}
    for fmt in FORMATS:
        for table, values in ((aliases, fmt.aliases), (mimetypes, fmt.mimetypes), (extensions, fmt.extensions)):
            for value in values:
                key = _clean(value)
                if table.get(key, fmt.name) != fmt.name:
                    raise ValueError(f"{key!r} is given to both {table[key]} and {fmt.name}")
                table[key] = fmt.name
        aliases.setdefault(_clean(fmt.name), fmt.name)
    return aliases, mimetypes, extensions


ALIASES, MIMETYPES, EXTENSIONS = _index()


def format_of_mimetype(value: str | None) -> str | None:
    """``"text/csv; charset=utf-8"`` -> ``"CSV"``; None for octet-stream and unknown types."""
    if not value:
        return None
    full = _clean(value)
    if full in MIMETYPES:  # e.g. "image/tiff; application=geotiff"
        return MIMETYPES[full]
    mimetype = full.split(";", 1)[0].strip()
    if not mimetype or mimetype in UNINFORMATIVE_MIMETYPES:
        return None
    if mimetype in MIMETYPES:
        return MIMETYPES[mimetype]
    # Structured syntax suffixes (RFC 6839): application/vnd.example+json is JSON.
    for suffix, name in (("+json", "JSON"), ("+xml", "XML"), ("+zip", "ZIP"), ("+gzip", "GZIP")):
        if mimetype.endswith(suffix):
            return name
    if mimetype.startswith("text/"):
        return "TXT"
    return None


def format_of_extension(extension: str | None) -> str | None:
    """``"xlsx"`` or ``".XLSX"`` -> ``"XLSX"``."""
    if not extension:
        return None
    return EXTENSIONS.get(_clean(extension))


def url_format_hint(url: str | None) -> tuple[str | None, str | None]:
    """The format a URL names and the text that named it: its path's extension, else a
    ``format=``/``service=`` query parameter. ``(None, None)`` when it names none."""
    if not url:
        return None, None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None, None
    last = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if "." in last:
        extension = last.rsplit(".", 1)[1].lower()
        if extension not in SCRIPT_EXTENSIONS:
            if name := format_of_extension(extension):
                return name, extension
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key.lower() in FORMAT_PARAMETERS:
            name = format_of_declared(value)
            if name:
                return name, f"{key}={value}"
    return None, None


def format_of_declared(value: object) -> str | None:
    """What a portal's ``format`` field means: ``".pdf"``, ``"PDF"``, ``"application/pdf"``
    -> ``"PDF"``; ``"Excel"`` -> ``"XLS"``; ``"xisx"`` -> ``"XLSX"``. None when unknown or
    ambiguous (``"CSV, XLS"``)."""
    if not isinstance(value, str):
        return None
    text = _clean(value)
    if not text:
        return None
    if text in ALIASES:
        return ALIASES[text]
    if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+_-]+(\s*;.*)?", text):
        return format_of_mimetype(text)
    if text in EXTENSIONS:
        return EXTENSIONS[text]
    if "/" in text and " " not in text:  # a path or URL given as the format
        name, _ = url_format_hint(text if "://" in text else "http://x/" + text)
        if name:
            return name
    words = [w for w in re.split(r"[^a-z0-9+#]+", text) if w and not w.isdigit()]
    found = {ALIASES[w] for w in words if w in ALIASES}
    # "Shapefile (zip)" is a shapefile: drop names that are another's family.
    found -= {family for name in found for family in family_chain(name)}
    return found.pop() if len(found) == 1 else None


def family_chain(name: str) -> list[str]:
    """``"GEOJSON"`` -> ``["JSON"]``; ``"NETCDF"`` -> ``["HDF5"]``."""
    chain = []
    current = BY_NAME.get(name)
    while current and current.family and current.family not in chain:
        chain.append(current.family)
        current = BY_NAME.get(current.family)
    return chain


def choose_format(evidence: dict[str, str | None]) -> tuple[str | None, str | None]:
    """The canonical format and the source it came from, given one name per source
    (``SOURCES``, most trusted first; missing or None means that source said nothing).

    The most trusted source wins, except that a less trusted source may make it more
    specific within its family: bytes that are a ZIP archive with a URL ending in
    ``.shp.zip``... stay ZIP, but with a declared "Shapefile" they are SHP; XML with a
    declared "WMS" is WMS. A less trusted source never contradicts a more trusted one:
    bytes that are HTML stay HTML whatever the portal declared.
    """
    for position, source in enumerate(SOURCES):
        name = evidence.get(source)
        if not name:
            continue
        for later in SOURCES[position + 1:]:
            refined = evidence.get(later)
            if refined and refined != name and name in family_chain(refined):
                return refined, later
        return name, source
    return None, None
