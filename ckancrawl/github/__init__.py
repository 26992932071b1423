"""Talking to GitHub for the ``extensions`` spider, one idea per module.

- ``repo_urls``: which GitHub repository a catalog dataset or a line of text names.
- ``graphql_query``: one aliased GraphQL query for a batch of repositories, and its
  answer split per repository (data and partial errors).
- ``metrics``: GitHub's answers (GraphQL nodes, REST JSON, Link headers) turned into the
  catalog's metric fields.
- ``etag_store``: ETags and the values they validated, kept between runs.
- ``tokens``: the tokens from the environment, their budgets and their rotation.
"""
