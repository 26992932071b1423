"""A simulated world of CKAN portals (and of sites that are not CKAN) on loopback.

One stdlib-only asyncio process (:mod:`tests.world.server`) serves every portal, each
on its own ``127.A.B.C`` address at one shared port, so Scrapy sees separate sites.

- :mod:`tests.world.spec`: what a portal is (hosts, CKAN behaviour, faults), the
  named presets, and each portal's ground truth.
- :mod:`tests.world.ckan_api`: CKAN's Action API as versions 2.2 to 2.11 answer it.
- :mod:`tests.world.pages`: the HTML pages (CKAN pages, other sites, error pages).
- :mod:`tests.world.server`: the HTTP/1.1 server, ``python -m tests.world.server SPEC``.
- :mod:`tests.world.launcher`: ``start_world(portals)`` runs the server as a
  subprocess and gives the portals with their listed URLs and resolved truth.
- :mod:`tests.world.resolver`: a Scrapy DNS resolver for ``*.test`` host names.
- :mod:`tests.world.generate`: ``make_world(n)``, the benchmark's world.
- :mod:`tests.world.loadtest`: measures the server's throughput.
"""
