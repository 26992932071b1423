"""Benchmarks of ckancrawl against the tools it replaces; see bench/README.md."""
