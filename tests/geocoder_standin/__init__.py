"""A stand-in for a Nominatim search endpoint, run in a thread of the test process.

Faithful to what ckancrawl uses of Nominatim's ``/search``: ``format=json`` answers a
JSON list of places whose ``lat``/``lon`` are *strings*; an unknown place is ``[]``; a
request without a User-Agent naming the application is refused with 403 (Nominatim's
usage policy); ``q=`` free text and the structured ``country=`` query. It records the
time of every request so tests can check the crawler's pace (at most one per second).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PLACES = {
    ("q", "zürich"): {"lat": "47.3744489", "lon": "8.5410422", "display_name": "Zürich, Schweiz"},
    ("country", "de"): {"lat": "51.1638175", "lon": "10.4478313", "display_name": "Deutschland"},
    ("country", "fr"): {"lat": "46.603354", "lon": "1.8883335", "display_name": "France"},
}


class GeocoderStandin:
    def __init__(self) -> None:
        self.requests: list[tuple[float, dict[str, str], str]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                agent = self.headers.get("User-Agent", "")
                standin.requests.append((time.monotonic(), query, agent))
                if parts.path != "/search":
                    return self._send(404, b"<html>Not Found</html>", "text/html")
                if "ckancrawl" not in agent.lower():
                    return self._send(403, b"<html>Access blocked: usage policy</html>", "text/html")
                if query.get("format") != "json":
                    return self._send(400, b'{"error": "format"}')
                key = ("q", query["q"].lower()) if "q" in query else ("country", query.get("country", "").lower())
                found = [PLACES[key]] if key in PLACES else []
                self._send(200, json.dumps(found).encode())

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/search"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GeocoderStandin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
