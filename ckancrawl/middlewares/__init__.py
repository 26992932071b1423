"""Downloader middlewares, one per file."""
