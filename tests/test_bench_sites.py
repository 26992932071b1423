"""Smoke test of the sites benchmark's comparison (bench/sites/): a small, fast world.

Not a timed test: the speed target is only reported by the benchmark itself. The slow
presets (answers after 20 s) are left out to keep this quick.
"""
from __future__ import annotations

from bench.sites.judge import VALUES, VERDICTS
from bench.sites.run import compare, world_portals


def test_benchmark_compares_both_tools_and_the_spider_gets_no_value_wrong(start_world, tmp_path):
    portals = [p for p in world_portals(24, latency_ms=5, seed=0, faulty_share=0.2) if not p.preset.startswith("slow")]
    world = start_world(portals)

    report = compare(world, tmp_path / "bench")

    assert set(report["tools"]) == {"original", "spider"}
    for run in report["tools"].values():
        assert run["returncode"] == 0, run["log"]
        for key in ("wall_s", "requests", "requests_per_s", "peak_rss_mb", "max_in_flight_per_host", "finished"):
            assert key in run
        assert run["requests"] > 0
        correctness = run["correctness"]
        assert correctness["missing_records"] == 0
        assert sum(correctness[v] for v in VERDICTS) == len(portals) * len(VALUES)
        assert set(correctness["per_value"]) == set(VALUES)
    assert set(report["targets"]) >= {"speedup", "max_in_flight_per_site", "wrong_values"}
    spider = report["tools"]["spider"]["correctness"]
    assert spider["wrong"] == 0, spider["examples"]["wrong"]
    assert spider["unknown_without_reason"] == 0
    # The world holds failures the original records as 0 or misses.
    assert report["tools"]["original"]["correctness"]["wrong"] > 0
