"""A Solr stand-in for CKAN's search index: stdlib only, in memory, optionally persisted.

No Solr can be installed here (see shared/recipes/ckan-test-server.md), so CKAN's
pysolr talks to this instead. It reads CKAN's own schema.xml and follows Solr where
CKAN can tell the difference: the standard and dismax query parsers, filter queries,
sorting, paging, field lists, field facets, commits, and Solr's JSON errors.

Run it as a process with `python -m tests.solr_standin --schema …`, or in a thread
with `SolrStandin(schema_path)` as a context manager.
"""
from .errors import SolrError
from .index import Index
from .schema import Schema
from .search import Params
from .server import SolrStandin, make_server

__all__ = ["Index", "Params", "Schema", "SolrError", "SolrStandin", "make_server"]
