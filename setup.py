"""Minimal setup so scrapyd-deploy can build an egg of the project."""
from setuptools import find_packages, setup

setup(
    name="ckancrawl",
    version="0.1.0",
    packages=find_packages(include=["ckancrawl", "ckancrawl.*"]),
    package_data={"ckancrawl": ["data/*"]},
    entry_points={"scrapy": ["settings = ckancrawl.settings"]},
)
