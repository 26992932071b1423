"""Shared test configuration. Fixtures live in tests/fixtures/, one module per service."""
import os

# Test servers listen on 127.x: every crawl a test starts (scrapyd, distributed and
# resource runners too) inherits this, also when pytest runs without scripts/test.
os.environ.setdefault("ALLOW_PRIVATE_ADDRESSES", "true")

pytest_plugins = [
    "tests.fixtures.mongo",
    "tests.fixtures.ckan",
    "tests.fixtures.world",
    "tests.fixtures.github",
    "tests.fixtures.scrapyd",
    "tests.fixtures.disk",
    "tests.fixtures.rendering",
]
