"""Pages for the rendering tests, served on 127.0.0.1 by a thread of the test process.

- ``/shell``: an application shell (a noscript notice, an empty mount point) whose
  inline script sets the title to "Rendered by script" and writes a heading.
- ``/late``: the same, but the script does it 200 ms after the load event.
- ``/later``: the same, 3 s after the load event (for renders that do not wait).
- ``/plain``: an ordinary page with its text in the HTML.
- ``/slow?s=N``: the shell, after N seconds.
- ``/ua``: a shell whose script writes the browser's user agent into its heading.
- ``/gone``: 404 with a short HTML body.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SHELL = """<!doctype html>
<html><head><meta charset="utf-8"><title>Loading</title></head>
<body><noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div>
<script>{run}</script></body></html>"""
FILL = ("document.title = 'Rendered by script';"
        "document.getElementById('root').innerHTML = '<h1>Datasets of the portal</h1>';")
PLAIN = """<!doctype html>
<html><head><title>Open Data Portal</title></head>
<body><h1>Open Data Portal</h1><p>{text}</p><script>var analytics = 1;</script></body></html>"""

PAGES = {
    "/shell": SHELL.format(run=FILL),
    "/late": SHELL.format(run=f"window.addEventListener('load', function () {{ setTimeout(function () {{ {FILL} }}, 200); }});"),
    "/later": SHELL.format(run=f"window.addEventListener('load', function () {{ setTimeout(function () {{ {FILL} }}, 3000); }});"),
    "/ua": SHELL.format(run="document.getElementById('root').innerHTML = '<h1>' + navigator.userAgent + '</h1>';"),
    "/plain": PLAIN.format(text="Find, share and use the datasets published by the city. " * 5),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        if parts.path == "/slow":
            time.sleep(float(parse_qs(parts.query).get("s", ["3"])[0]))
            body, status = PAGES["/shell"], 200
        elif parts.path == "/gone":
            body, status = "<html><body><p>Not found</p></body></html>", 404
        elif parts.path in PAGES:
            body, status = PAGES[parts.path], 200
        else:
            body, status = "", 404
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser gave up waiting (timeout tests)

    def log_message(self, *args: Any) -> None:
        pass


class PageServer:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> "PageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
