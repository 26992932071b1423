"""The stand-in's HTTP server (aiohttp) and its renderer (a real Chromium, via Playwright).

Endpoints:

- ``/render.html`` (GET with query arguments, or POST with ``application/json`` or
  ``application/javascript``): the HTML of the page after its scripts ran. Arguments
  are checked as Splash checks them (arguments.py). Then, as Splash's render.html:
  load the page (``wait_until="load"``), wait ``wait`` seconds, run ``js_source``
  (its errors are ignored, as Splash's evaljs does), answer the DOM as HTML. A page
  answered with 4xx/5xx is rendered like any other (Splash answers 200 with it).
- ``/_ping``: ``{"status": "ok", "maxrss": ...}``.
- ``/_standin/requests`` (not Splash's): the arguments of every render request so far.

Errors, with Splash's JSON body ``{"error", "type", "description", "info"}``:
400 BadOption (bad arguments; the body ends with a newline, as Splash's synchronous
refusals do), 415 UnsupportedContentType, 498 ExpiredArguments (``load_args`` not in
the cache), 502 RenderError (the page could not be loaded: ``info`` is
``{"type": "Network", "code", "text", "url"}`` with Qt's QNetworkReply codes and
texts), 504 GlobalTimeoutError (``timeout`` exceeded, counting the wait for a free
slot: ``info`` is ``{"remaining", "timeout"}``), 500 InternalError.

Not served: render.png/jpeg/json/har, execute/run (Lua), proxy profiles, request
filters and JS profiles (refused as on a Splash without them); ``resource_timeout``
is checked but not applied; ``headers`` go with every request of the page, not only
the first one.
"""
from __future__ import annotations

import asyncio
import json
import re
import resource
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.splash_standin.arguments import (
    ArgumentCache,
    Arguments,
    BadOption,
    ExpiredArguments,
    GlobalTimeoutError,
    InternalError,
    RenderArgs,
    RenderError,
    SplashError,
    UnsupportedContentType,
)

CHROMIUM_FLAGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
SUPPORTED_POST_TYPES = ["application/javascript", "application/json"]

_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")
#: Chromium's net errors as Qt's QNetworkReply errors (code, errorString), which is
#: what Splash reports.
_QT_ERRORS = {
    "ERR_CONNECTION_REFUSED": (1, "Connection refused"),
    "ERR_UNSAFE_PORT": (1, "Connection refused"),
    "ERR_ADDRESS_UNREACHABLE": (1, "Connection refused"),
    "ERR_CONNECTION_CLOSED": (2, "Connection closed"),
    "ERR_CONNECTION_RESET": (2, "Connection closed"),
    "ERR_EMPTY_RESPONSE": (2, "Connection closed"),
    "ERR_NAME_NOT_RESOLVED": (3, "Host {host} not found"),
    "ERR_NAME_RESOLUTION_FAILED": (3, "Host {host} not found"),
    "ERR_TIMED_OUT": (4, "Socket operation timed out"),
    "ERR_CONNECTION_TIMED_OUT": (4, "Socket operation timed out"),
    "ERR_TOO_MANY_REDIRECTS": (10, "Too many redirects"),
}


def network_error(message: str, url: str) -> RenderError:
    found = _NET_ERROR.search(message)
    code_name = found.group(1) if found else ""
    if code_name.startswith(("ERR_SSL_", "ERR_CERT_", "ERR_BAD_SSL")):
        code, text = 6, "SSL handshake failed"
    else:
        code, text = _QT_ERRORS.get(code_name, (99, "Unknown error"))
    return RenderError({"type": "Network", "code": code, "text": text.format(host=urlsplit(url).hostname),
                        "url": url})


class Renderer:
    def __init__(self, chromium: str, slots: int) -> None:
        self.chromium = chromium
        self.slots = asyncio.Semaphore(slots)
        self._playwright: Any = None
        self.browser: Any = None

    async def start(self) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self.browser = await self._playwright.chromium.launch(executable_path=self.chromium, args=CHROMIUM_FLAGS)

    async def stop(self) -> None:
        if self.browser is not None:
            await self.browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    async def render(self, args: RenderArgs) -> str:
        from playwright.async_api import Error as PlaywrightError

        async with self.slots:
            options: dict[str, Any] = {}
            if args.viewport != "full":
                width, height = map(int, args.viewport.split("x"))
                options["viewport"] = {"width": width, "height": height}
            if args.proxy:
                options["proxy"] = {"server": args.proxy}
            if args.headers:
                pairs = args.headers.items() if isinstance(args.headers, dict) else args.headers
                options["extra_http_headers"] = {name: value for name, value in pairs}
            context = await self.browser.new_context(**options)
            try:
                page = await context.new_page()
                target = args.baseurl or args.url
                await page.route("**/*", self._router(args, target))
                try:
                    await page.goto(target, wait_until="load", timeout=0)
                except PlaywrightError as error:
                    raise network_error(str(error), args.url) from None
                if args.wait:
                    await asyncio.sleep(args.wait)
                if args.js_source:
                    try:
                        await page.evaluate(args.js_source)
                    except PlaywrightError:
                        pass
                return await page.content()
            finally:
                await context.close()

    def _router(self, args: RenderArgs, target: str) -> Any:
        first = {"pending": True}

        async def route(route: Any, request: Any) -> None:
            if request.is_navigation_request() and first["pending"]:
                first["pending"] = False
                if args.baseurl:
                    # Splash fetches the HTML from url and renders it as if it came from baseurl.
                    fetched = await route.fetch(url=args.url, method=args.http_method,
                                                post_data=args.body if args.body else None)
                    await route.fulfill(response=fetched)
                    return
                overrides: dict[str, Any] = {}
                if args.http_method != "GET":
                    overrides["method"] = args.http_method
                if args.body:
                    overrides["post_data"] = args.body
                await route.continue_(**overrides)
                return
            if not args.images and request.resource_type == "image":
                await route.abort()
                return
            await route.continue_()

        return route


def _error(error: SplashError, newline: bool = False) -> web.Response:
    text = json.dumps(error.body()) + ("\n" if newline else "")
    return web.Response(status=error.status, text=text, content_type="application/json")


class SplashStandIn:
    def __init__(self, renderer: Renderer, max_timeout: float) -> None:
        self.renderer = renderer
        self.max_timeout = max_timeout
        self.cache = ArgumentCache()
        self.requests: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/render.html", self.render_html)
        app.router.add_route("POST", "/render.html", self.render_html)
        app.router.add_get("/_ping", self.ping)
        app.router.add_get("/_standin/requests", self.list_requests)
        return app

    async def render_html(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        content_type = request.headers.get("Content-Type", "")
        body = await request.read()
        try:
            if request.method == "POST" and not any(t in content_type for t in SUPPORTED_POST_TYPES):
                return _error(UnsupportedContentType({"supported": SUPPORTED_POST_TYPES, "received": content_type}))
            arguments = Arguments.parse(dict(request.query), request.method, content_type, body, self.max_timeout)
            self.requests.append({k: v for k, v in arguments.data.items() if k != "body"})
            args, saved = arguments.read(self.cache)
        except (BadOption, ExpiredArguments) as error:
            return _error(error, newline=True)
        headers = {}
        if saved:
            headers["X-Splash-Saved-Arguments"] = ";".join(f"{name}={key}" for name, key in saved)
        try:
            html = await asyncio.wait_for(self.renderer.render(args), args.timeout)
        except asyncio.TimeoutError:
            remaining = round(started + args.timeout - loop.time(), 3)
            return _error(GlobalTimeoutError({"remaining": remaining, "timeout": args.timeout}))
        except SplashError as error:
            return _error(error)
        except Exception as error:  # what Splash reports as an unhandled internal error
            return _error(InternalError(str(error)))
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})

    async def list_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)
