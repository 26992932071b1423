"""The render.html arguments as Splash 3.5 reads and checks them (splash/render_options.py).

Every refusal is a :class:`BadOption` whose ``info`` has Splash's shape: ``type``
(``bad_argument``, ``argument_required`` or ``invalid_json``), ``argument``,
``description`` and, for ranges, ``min``/``max``/``value``, for types
``required_type``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlparse

DEFAULT_TIMEOUT = 30.0
VIEWPORT_MAX_WIDTH = VIEWPORT_MAX_HEIGHT = 40000
VIEWPORT_MAX_AREA = 1280 * VIEWPORT_MAX_HEIGHT


class SplashError(Exception):
    """An error answer: HTTP status, Splash's type name and docstring, ``info``."""

    status = 500
    description = "Unhandled internal error"

    def __init__(self, info: Any = None) -> None:
        super().__init__(info)
        self.info = info

    def body(self) -> dict[str, Any]:
        return {"error": self.status, "type": type(self).__name__, "description": self.description, "info": self.info}


class BadOption(SplashError):
    status = 400
    description = "Incorrect HTTP API arguments"


class UnsupportedContentType(SplashError):
    status = 415
    description = "Request Content-Type is not supported"


class ExpiredArguments(SplashError):
    status = 498
    description = "Arguments stored with ``save_args`` are expired"


class RenderError(SplashError):
    status = 502
    description = "Error rendering page"


class GlobalTimeoutError(SplashError):
    status = 504
    description = "Timeout exceeded rendering page"


class InternalError(SplashError):
    status = 500
    description = "Unhandled internal error"


def bad(argument: str, description: str, type: str = "bad_argument", **extra: Any) -> BadOption:
    return BadOption({"type": type, "argument": argument, "description": description, **extra})


_REQUIRED = object()


def _as_int(value: Any) -> int:
    return int(value)


_as_int.__name__ = "int"


def _as_bytes(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


_as_bytes.__name__ = "bytes"


class ArgumentCache:
    """Values stored with ``save_args``, by the SHA1 of their JSON (as Splash keys them),
    the oldest dropped beyond ``size``."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        key = hashlib.sha1(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()
        self.values.pop(key, None)
        self.values[key] = value
        while len(self.values) > self.size:
            self.values.pop(next(iter(self.values)))
        return key

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


@dataclass
class RenderArgs:
    url: str
    baseurl: str | None
    timeout: float
    wait: float
    resource_timeout: float
    viewport: str
    images: int
    headers: Any
    proxy: str | None
    js_source: str | None
    http_method: str
    body: bytes | None


class Arguments:
    """Splash's RenderOptions: raw values from the query string and the JSON body."""

    def __init__(self, data: dict[str, Any], max_timeout: float) -> None:
        self.data = data
        self.max_timeout = max_timeout

    @classmethod
    def parse(cls, query: dict[str, str], method: str, content_type: str, body: bytes,
              max_timeout: float) -> "Arguments":
        data: dict[str, Any] = dict(query)
        if method == "POST":
            if "application/json" in content_type:
                try:
                    data.update(json.loads(body.decode("utf-8")))
                except ValueError as error:
                    raise BadOption({"type": "invalid_json", "description": "Can't decode JSON", "message": str(error)})
            if "application/javascript" in content_type:
                data["js_source"] = body.decode("utf-8")
        return cls(data, max_timeout)

    def get(self, name: str, default: Any = _REQUIRED, type: Callable[[Any], Any] | None = str,
            range: tuple[float, float] | None = None) -> Any:
        value = self.data.get(name)
        if value is None:
            if default is _REQUIRED:
                raise bad(name, f"Required argument is missing: {name}", type="argument_required")
            return default
        if type is not None:
            try:
                value = type(value)
            except (ValueError, TypeError):
                raise bad(name, f"Argument {name!r} has a wrong type", required_type=type.__name__)
        if range is not None and not range[0] <= value <= range[1]:
            raise bad(name, "Argument is out of the allowed range", min=range[0], max=range[1], value=value)
        return value

    def flag(self, name: str, default: int) -> int:
        return self.get(name, default, type=_as_int, range=(0, 1))

    def timeout(self) -> float:
        return self.get("timeout", min(self.max_timeout, DEFAULT_TIMEOUT), type=float, range=(0, self.max_timeout))

    def read(self, cache: "ArgumentCache") -> tuple[RenderArgs, list[tuple[str, str]]]:
        """Every argument render.html uses, checked in Splash's order; also the
        ``(name, key)`` pairs stored for ``save_args`` (the X-Splash-Saved-Arguments
        header)."""
        load_args = self._load_args()
        expired = [name for name, key in load_args.items() if key not in cache]
        if expired:
            raise ExpiredArguments({"expired": expired})
        save_args = self._save_args()
        saved = [(name, cache.add(self.data.get(name))) for name in save_args]
        for name, key in load_args.items():
            self.data[name] = cache[key]
        filters = [name for name in self.get("filters", "").split(",") if name]
        if filters:  # no request filters are configured on this server
            raise bad("filters", f"Invalid filter names: {filters}")
        engine = self.get("engine", "webkit")
        if engine not in ("webkit", "chromium"):
            raise bad("engine", f"Unknown render engine {engine}")
        timeout = self.timeout()
        wait = self.get("wait", 0.0, type=float, range=(0, timeout))
        url = self.get("url", type=None)
        baseurl = self.get("baseurl", None, type=None)
        resource_timeout = self.get("resource_timeout", 0.0, type=float, range=(0, 1e6))
        viewport = self._viewport(wait)
        if self.flag("render_all", 0) == 1 and wait == 0:
            raise bad("render_all", "Pass non-zero 'wait' to render full webpage")
        images = self.flag("images", 1)
        headers = self._headers()
        proxy = self._proxy()
        if self.get("js", None):
            raise bad("js", "Javascript profiles are not enabled on server")
        js_source = self.get("js_source", None)
        method = self.get("http_method", "GET")
        if method.upper() not in ("GET", "POST"):
            raise bad("http_method", f"Unsupported HTTP method {method}")
        body = self.get("body", None, type=_as_bytes)
        if method.upper() == "GET" and body:
            raise bad("body", "GET request should not have a body")
        self.flag("html5_media", 0)
        self.flag("http2", 0)
        args = RenderArgs(url=url, baseurl=baseurl, timeout=timeout, wait=wait, resource_timeout=resource_timeout,
                          viewport=viewport, images=images, headers=headers, proxy=proxy, js_source=js_source,
                          http_method=method.upper(), body=body)
        return args, saved

    def _viewport(self, wait: float) -> str:
        viewport = self.get("viewport", "1024x768")
        if viewport == "full":
            if wait == 0:
                raise bad("viewport", "Pass non-zero 'wait' to render full webpage")
            return viewport
        try:
            width, height = map(int, viewport.split("x"))
        except ValueError:
            raise bad("viewport", f"Invalid viewport format: {viewport}")
        if not (0 < width <= VIEWPORT_MAX_WIDTH and 0 < height <= VIEWPORT_MAX_HEIGHT
                and width * height < VIEWPORT_MAX_AREA):
            raise bad("viewport", f"Viewport ({width}x{height}, area={width * height}) is out of range "
                                  f"({VIEWPORT_MAX_WIDTH}x{VIEWPORT_MAX_HEIGHT}, area={VIEWPORT_MAX_AREA})")
        return viewport

    def _headers(self) -> Any:
        headers = self.get("headers", None, type=None)
        message = "'headers' must be either a JSON array of (name, value) pairs or a JSON object"
        if headers is None:
            return None
        if not isinstance(headers, (list, tuple, dict)):
            raise bad("headers", message)
        if isinstance(headers, (list, tuple)):
            for pair in headers:
                if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    raise bad("headers", message)
        return headers

    def _proxy(self) -> str | None:
        proxy = self.get("proxy", None)
        if proxy and re.match(r"^\w+://", proxy):
            parts = urlparse(proxy)
            if parts.scheme not in ("http", "socks5") or not parts.hostname:
                raise bad("proxy", "Invalid proxy URL format.")
            return proxy
        return None  # a profile name: no proxy profiles are configured, so none applies

    def _save_args(self) -> list[str]:
        value = self.get("save_args", None, type=None)
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list):
            raise bad("save_args", "'save_args' should be either a comma-separated string or a JSON array with "
                                   "argument names")
        if not all(isinstance(name, str) for name in value):
            raise bad("save_args", "'save_args' should be a list of strings")
        return value

    def _load_args(self) -> dict[str, str]:
        value = self.get("load_args", None, type=None)
        if value is None:
            return {}
        if isinstance(value, str):
            try:
                value = dict(pair.split("=", 1) for pair in value.split(";"))
            except ValueError:
                raise bad("load_args", "'load_args' string value is not a semicolon-separated list of "
                                       "name=hash pairs")
        if not isinstance(value, dict):
            raise bad("load_args", "'load_args' should be either a JSON object with argument hashes or a "
                                   "semicolon-separated list of name=hash pairs")
        return value
