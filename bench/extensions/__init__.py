"""Benchmark of the ``extensions`` spider against the original one-repository-at-a-time
REST collector, both on the GitHub stand-in. Run: ``python -m bench.extensions.run``."""
