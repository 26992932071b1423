"""Run the Splash stand-in: ``python -m tests.splash_standin [--port N] [--max-timeout S]
[--slots N] [--chromium PATH] [--watch-stdin]``. Prints ``READY http://127.0.0.1:PORT``
once it listens (and its browser is up), then serves until it is terminated, or with
``--watch-stdin`` until its stdin closes.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web

from tests.splash_standin.server import Renderer, SplashStandIn


async def serve(args: argparse.Namespace) -> None:
    renderer = Renderer(args.chromium, args.slots)
    await renderer.start()
    runner = web.AppRunner(SplashStandIn(renderer, args.max_timeout).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if args.watch_stdin:
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1024) else None)
    await stop.wait()
    await runner.cleanup()
    await renderer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.splash_standin")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-timeout", type=float, default=90.0, help="Splash's --max-timeout")
    parser.add_argument("--slots", type=int, default=20, help="Splash's --slots: renders at once")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin closes")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
