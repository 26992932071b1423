"""Shared test configuration. Fixtures live in tests/fixtures/, one module per service."""
pytest_plugins = [
    "tests.fixtures.mongo",
    "tests.fixtures.ckan",
    "tests.fixtures.world",
    "tests.fixtures.github",
    "tests.fixtures.scrapyd",
]
