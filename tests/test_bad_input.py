"""Bad input that the simulated world does not serve: compression bombs on API answers.

Scrapy 2.19's HttpCompressionMiddleware stops decompressing at DOWNLOAD_MAXSIZE (the
decompressed size counts, not the bytes on the wire), and the refusal is recorded as
"too large" with the sizes; the crawl goes on with the other sites.

What else is tried, and where: HTML, empty, truncated and malformed JSON, invalid
UTF-8, a list where a dict was expected, ``success`` without ``result``
(tests/test_failures.py); numbers as strings, slow answers, redirect loops, 429s and
every failure preset of the world (tests/test_sites_crawl.py); keys with ``.``, ``$``,
NUL (tests/test_harvest_world.py, tests/test_mongo_keys.py); documents over 16 MB
(tests/test_harvest_world.py); URLs that are not URLs (tests/test_sites_crawl.py);
MongoDB operators in portal data (tests/test_security.py).
"""
from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.crawl import run_crawl

#: 50 MB of zeros: about 50 KB compressed.
BOMB_BYTES = 50 * 1024 * 1024


def _bombs() -> dict[str, bytes]:
    raw = b'{"success": true, "result": {"ckan_version": "' + b"0" * BOMB_BYTES + b'"}}'
    deflater = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    return {"gzip": gzip.compress(raw, 9), "deflate": deflater.compress(raw) + deflater.flush()}


class BombHandler(BaseHTTPRequestHandler):
    bombs: dict[str, bytes] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        encoding = self.path.strip("/").split("/", 1)[0]
        if encoding in self.bombs and "status_show" in self.path:
            body, headers = self.bombs[encoding], {"Content-Type": "application/json", "Content-Encoding": encoding}
        elif encoding in self.bombs and self.path.rstrip("/") == f"/{encoding}":
            body, headers = b"<html><title>Bomb portal</title></html>", {"Content-Type": "text/html"}
        else:
            body, headers = b"not here", {"Content-Type": "text/plain"}
            self.send_response(404)
        if "Content-Encoding" in headers or body.startswith(b"<html>"):
            self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def bomb_server():
    BombHandler.bombs = _bombs()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BombHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused_as_too_large_and_the_crawl_goes_on(bomb_server, encoding, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{bomb_server}/{encoding}/\nnot a url\n")
    result = run_crawl("sites", tmp_path, args={"urls": str(urls)}, settings={"DOWNLOAD_MAXSIZE": str(1024 * 1024)})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 2
    item = result.by("listed_url")[f"{bomb_server}/{encoding}/"]
    assert item["status"] == "failed"
    assert item["failure"].startswith("too large: "), item["failure"]
    assert "decompresses past DOWNLOAD_MAXSIZE (1048576 B; 5" in item["failure"]
    assert item["ckan_version"] is None
