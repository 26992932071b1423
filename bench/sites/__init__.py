"""Benchmark of the sites spider against the original threaded profiler."""
