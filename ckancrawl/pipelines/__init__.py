"""Item pipelines, one per file. Each docstring names the settings it reads."""
