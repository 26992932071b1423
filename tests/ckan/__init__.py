"""The test catalog's CKAN side: scheming dataset types (site.yaml, extension.yaml),
wsgi.py and bootstrap.py (both run inside the CKAN virtualenv, not imported here), and
catalog.py, the client tests use to seed and inspect the catalog."""
