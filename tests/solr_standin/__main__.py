"""Run the Solr stand-in: python -m tests.solr_standin --schema PATH [--port 58983] [--data FILE]."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.solr_standin", description=__doc__)
    parser.add_argument("--schema", required=True, help="the core's schema.xml (CKAN's own)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=58983)
    parser.add_argument("--core", default="ckan")
    parser.add_argument("--data", help="persist committed updates to this JSON-lines file")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)

    server = make_server(args.schema, args.host, args.port, args.core, args.data, args.verbose)
    # SIGTERM stops serving cleanly; shutdown() must come from another thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"Solr stand-in listening on http://{args.host}:{server.server_address[1]}/solr/{args.core}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
