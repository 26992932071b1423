"""The CKAN WSGI application for gunicorn, configured by $CKAN_INI (the wheel ships no wsgi.py).

Runs inside the CKAN virtualenv: gunicorn ... --chdir tests/ckan wsgi:application
"""
import os

from ckan.cli import CKANConfigLoader
from ckan.config.middleware import make_app

application = make_app(CKANConfigLoader(os.environ["CKAN_INI"]).get_config())
