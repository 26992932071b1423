"""Run the GitHub stand-in: ``python -m tests.github_standin [options]``.

Prints ``READY http://127.0.0.1:PORT`` on stdout once it listens, then serves until
killed. Options: ``--world FILE`` (JSON: ``{"repos": [...]}``, see ``world.py``) or
``--generate N [--seed S]``; ``--tokens a,b`` (accepted tokens; others get 401);
``--latency SECONDS``; ``--window SECONDS`` (primary budget window, 3600);
``--core-limit``/``--graphql-limit`` (5000) and ``--anonymous-limit`` (60);
``--primary-status`` (403 or 429); ``--graphql-limit-style`` (``200``: HTTP 200 with
``RATE_LIMITED``; ``403``: HTTP 403 with ``RATE_LIMIT``); ``--secondary-core`` (900) and
``--secondary-graphql`` (2000) points per minute; ``--max-concurrent`` (100).
"""
from __future__ import annotations

import argparse
import json
import sys

from tests.github_standin.limits import Budgets, SecondaryLimits
from tests.github_standin.server import Server, StandIn
from tests.github_standin.world import World, generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.github_standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--world")
    parser.add_argument("--generate", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tokens", default="")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--window", type=float, default=3600.0)
    parser.add_argument("--core-limit", type=int, default=5000)
    parser.add_argument("--graphql-limit", type=int, default=5000)
    parser.add_argument("--anonymous-limit", type=int, default=60)
    parser.add_argument("--primary-status", type=int, choices=(403, 429), default=403)
    parser.add_argument("--graphql-limit-style", choices=("200", "403"), default="200")
    parser.add_argument("--secondary-core", type=int, default=900)
    parser.add_argument("--secondary-graphql", type=int, default=2000)
    parser.add_argument("--max-concurrent", type=int, default=100)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the stand-in only listens on the loopback interface")
    repos: list = []
    if args.world:
        with open(args.world, encoding="utf-8") as handle:
            loaded = json.load(handle)
        repos += loaded["repos"] if isinstance(loaded, dict) else loaded
    if args.generate:
        repos += generate(args.generate, args.seed)
    standin = StandIn(
        World(repos),
        [t for t in args.tokens.split(",") if t],
        latency=args.latency,
        budgets=Budgets(args.window, {"core": args.core_limit, "graphql": args.graphql_limit},
                        {"core": args.anonymous_limit}),
        secondary=SecondaryLimits(args.max_concurrent, {"core": args.secondary_core, "graphql": args.secondary_graphql}),
        primary_status=args.primary_status,
        graphql_limit_style=args.graphql_limit_style,
    )
    server = Server((args.host, args.port), standin)
    print(f"READY http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
