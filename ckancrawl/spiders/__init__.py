"""Spiders: small classes on the shared CKAN Action API base (spiders/ckan_api.py)."""
