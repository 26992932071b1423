"""The services the test suite runs against, started and stopped from Python.

`CatalogStack` (stack.py) runs the real CKAN 2.11 test catalog: PostgreSQL 15
(postgres.py), Redis (redis.py), the Solr stand-in (solr.py) and CKAN under gunicorn
(ckan.py). Files go under .services/ (layout.py); ports are on 127.0.0.1 only.
The pytest fixtures that use it are in tests/fixtures/ckan.py.
"""
from .layout import Layout, Ports
from .process import ServiceError
from .stack import CatalogStack

__all__ = ["CatalogStack", "Layout", "Ports", "ServiceError"]
