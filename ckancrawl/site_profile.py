"""What a site's home page and domain say about it: name, description, language, type,
country. Pure functions; the ``sites`` spider applies them to each home page.

Site type rules (first match wins, on the host name's labels):

==========  ==================================================================
Government  a label ``gov``, ``gob``, ``gouv``, ``govt``, ``gv``, ``go`` (as the
            second-level label of a ccTLD, e.g. ``go.jp``), ``mil``,
            ``government``, ``admin`` (``admin.ch``), ``gc`` (``gc.ca``),
            ``bund`` (``bund.de``), or a host under ``europa.eu`` / ``int``
            intergovernmental bodies listed in ``INTERGOVERNMENTAL``
Educational ``edu``, ``ac`` (``ac.uk``), ``school``, or a label starting with
            ``univ`` / ``uni-`` or containing ``university``, ``college``
Research    a label containing ``research``, ``science``, ``institut``, ``lab``,
            ``observatory``, or ``res`` as a second-level label
Healthcare  a label containing ``health``, ``hospital``, ``medic``, ``nhs``
Non_profit  the TLD ``org``, ``ngo``, ``ong``, or ``org``/``or`` as second level
Commercial  the TLD ``com``, ``biz``, ``co``, ``io``, ``ai``, ``net``, or ``com``
            / ``co`` as second level (``co.uk``)
Unknown     anything else, and IP addresses
==========  ==================================================================
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import pycountry

#: ccTLDs that differ from the ISO code or name no country.
CCTLD_EXCEPTIONS: dict[str, str | None] = {"uk": "GB", "eu": "EU", "su": None}
#: Country TLDs mostly rented as brands: read as a country only under a registry's own
#: second-level label (gov.co, ac.io, com.ai).
BRAND_TLDS = {"io", "ai", "co", "me", "tv", "cc", "fm", "ly"}
_REGISTRY_SECOND_LEVEL = {"gov", "gob", "edu", "ac", "org", "com", "net", "mil"}

INTERGOVERNMENTAL = ("europa.eu", "un.org", "who.int", "worldbank.org", "oecd.org", "imf.org")

_GOVERNMENT = {"gov", "gob", "gouv", "govt", "gv", "mil", "government", "admin", "gc", "bund", "gub", "gouvernement"}
_EDUCATION = {"edu", "ac", "school", "schools"}
_NONPROFIT_TLDS = {"org", "ngo", "ong"}
_COMMERCIAL_TLDS = {"com", "biz", "co", "io", "ai", "net", "shop", "company"}


def host_labels(url: str) -> list[str]:
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return []
    return [label for label in host.split(".") if label]


def _is_ip(labels: list[str]) -> bool:
    try:
        ipaddress.ip_address(".".join(labels))
        return True
    except ValueError:
        return False


def country_of(url: str) -> str | None:
    """ISO 3166-1 alpha-2 code (upper case) from the country-code TLD, or None."""
    labels = host_labels(url)
    if len(labels) < 2 or _is_ip(labels):
        return None
    tld = labels[-1]
    if tld in BRAND_TLDS and labels[-2] not in _REGISTRY_SECOND_LEVEL:
        return None
    if tld in CCTLD_EXCEPTIONS:
        return CCTLD_EXCEPTIONS[tld]
    return tld.upper() if len(tld) == 2 and pycountry.countries.get(alpha_2=tld.upper()) else None


def country_name(code: str | None) -> str | None:
    """The English name of an ISO 3166-1 alpha-2 code ("European Union" for EU)."""
    if not code:
        return None
    if code == "EU":
        return "European Union"
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or getattr(country, "name", None)


def site_type_of(url: str) -> str:
    """One of Government, Educational, Research, Healthcare, Non_profit, Commercial,
    Unknown, by the rules in this module's docstring."""
    labels = host_labels(url)
    if not labels or _is_ip(labels) or len(labels) < 2:
        return "Unknown"
    host = ".".join(labels)
    tld = labels[-1]
    second = labels[-2] if len(labels) >= 2 else ""
    is_cc = len(tld) == 2
    if (
        any(label in _GOVERNMENT for label in labels[:-1])
        or tld in ("gov", "mil")
        or (is_cc and second == "go")
        or any(host == ig or host.endswith("." + ig) for ig in INTERGOVERNMENTAL)
    ):
        return "Government"
    if (
        tld == "edu"
        or any(label in _EDUCATION for label in labels[:-1])
        or any(label.startswith(("univ", "uni-")) or "university" in label or "college" in label for label in labels)
    ):
        return "Educational"
    if any(word in label for label in labels for word in ("research", "science", "institut", "observator")) or any(
        label.startswith("lab") or label.endswith("lab") for label in labels[:-1]
    ) or (is_cc and second == "res"):
        return "Research"
    if any(word in label for label in labels for word in ("health", "hospital", "medic", "nhs")):
        return "Healthcare"
    if tld in _NONPROFIT_TLDS or (is_cc and second in ("org", "or")):
        return "Non_profit"
    if tld in _COMMERCIAL_TLDS or (is_cc and second in ("com", "co")):
        return "Commercial"
    return "Unknown"


_SPACES = re.compile(r"\s+")


def _clean(value: Any, limit: int = 1000) -> str | None:
    if not isinstance(value, str):
        return None
    text = _SPACES.sub(" ", value).strip()
    return text[:limit] or None


def page_facts(response: Any) -> dict[str, str | None]:
    """Title, description and language of an HTML page (a Scrapy TextResponse)."""
    from scrapy.http import TextResponse

    facts: dict[str, str | None] = {"title": None, "description": None, "language": None}
    if not isinstance(response, TextResponse):
        return facts
    try:
        css = response.css
        facts["title"] = _clean(css('meta[property="og:site_name"]::attr(content)').get(), 300) or _clean(
            css("title::text").get(), 300
        )
        facts["description"] = _clean(css('meta[name="description"]::attr(content)').get()) or _clean(
            css('meta[property="og:description"]::attr(content)').get()
        )
        language = (
            css("html::attr(lang)").get()
            or css('meta[http-equiv="content-language" i]::attr(content)').get()
            or response.headers.get(b"Content-Language", b"").decode("latin-1")
        )
    except (ValueError, AttributeError):  # not parseable as HTML
        return facts
    facts["language"] = normalize_language(language)
    return facts


def normalize_language(value: str | None) -> str | None:
    """``en_GB``, ``EN-gb``, ``en-GB, fr`` -> ``en-GB``; None when not a language tag."""
    if not value:
        return None
    first = value.split(",")[0].strip().replace("_", "-")
    match = re.fullmatch(r"([A-Za-z]{2,3})(?:-([A-Za-z0-9]{2,8}))?(?:-.*)?", first)
    if not match:
        return None
    primary, region = match.group(1).lower(), match.group(2)
    if region:
        region = region.upper() if len(region) == 2 else region.title()
        return f"{primary}-{region}"
    return primary
