"""ETags kept between runs (ckancrawl.github.etag_store)."""
from __future__ import annotations

from pathlib import Path

from ckancrawl.github.etag_store import ETagStore, default_cache_dir


def test_entries_survive_a_new_run(tmp_path: Path) -> None:
    store = ETagStore(tmp_path)
    store.put("contributors:1", 'W/"abc"', {"count": 57, "pushed_at": "2024-01-01T00:00:00Z"})
    store.close()
    again = ETagStore(tmp_path)
    entry = again.get("contributors:1")
    assert entry is not None and entry.etag == 'W/"abc"' and entry.value["count"] == 57
    again.close()


def test_only_flushed_entries_are_on_disk(tmp_path: Path) -> None:
    store = ETagStore(tmp_path)
    store.put("a", "1", 1)
    assert store.flush() == 1
    store.put("b", "2", 2)
    assert ETagStore(tmp_path).get("b") is None  # not flushed yet: a crash would lose it
    assert ETagStore(tmp_path).get("a") is not None
    store.close()


def test_touch_renews_the_check_time(tmp_path: Path) -> None:
    store = ETagStore(tmp_path)
    store.put("a", "1", 1)
    first = store.get("a").checked_at
    store.touch("a")
    assert store.get("a").checked_at >= first and store.get("a").etag == "1"
    store.close()


def test_forget_removes_an_entry(tmp_path: Path) -> None:
    store = ETagStore(tmp_path)
    store.put("a", "1", 1)
    store.flush()
    store.forget("a")
    store.close()
    assert ETagStore(tmp_path).get("a") is None


def test_the_cache_dir_comes_from_the_setting(tmp_path: Path) -> None:
    assert default_cache_dir({"GITHUB_CACHE_DIR": str(tmp_path)}) == tmp_path


def test_the_default_cache_dir_is_under_services_of_the_project(monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_CACHE_DIR", raising=False)
    path = default_cache_dir({})
    assert path.parts[-2:] == (".services", "github-cache")
    assert (path.parent.parent / "scrapy.cfg").exists()
