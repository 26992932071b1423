"""A stand-in for GitHub's REST and GraphQL APIs, served on 127.0.0.1 in a subprocess.

Start it with :class:`tests.github_standin.client.GitHubStandIn` (or
``python -m tests.github_standin``). Modules: ``world`` (the repositories),
``graphql_parser`` and ``graphql_executor`` (GraphQL), ``rest`` (REST endpoints),
``limits`` (primary and secondary rate limits), ``server`` (HTTP, faults, control API).
"""
