"""Aggregation math in virtual time: histogram merge, percentiles, sliding windows,
proxy restarts and re-sent reports, bounded memory."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gossamer.control.telemetry import BUCKETS, ReportError, TelemetryStore, parse_report, quantile
from gossamer.control.telemetry.histogram import add_counts, bucket_of, empty_counts
from gossamer.control.telemetry.window import MAX_PATHS_PER_SLOT, SLOT_COUNT, SeriesWindow

T0 = 1_764_120_000.0


def histogram(latencies: list[float]) -> list[int]:
    counts = empty_counts()
    for s in latencies:
        counts[bucket_of(s)] += 1
    return counts


def series(
    dst: str = "default/reviews",
    *,
    latencies: list[float] | None = None,
    codes: dict[str, int] | None = None,
    src: str = "default/frontend",
    route: str = "",
    subset: str = "",
    direction: str = "outbound",
    mtls: bool = True,
    paths: dict[str, int] | None = None,
) -> dict[str, Any]:
    latencies = latencies if latencies is not None else [0.003] * sum((codes or {}).values())
    return {
        "direction": direction,
        "src": src,
        "dst": dst,
        "route": route,
        "subset": subset,
        "mtls": mtls,
        "codes": codes if codes is not None else {"2xx": len(latencies)},
        "counts": histogram(latencies),
        "sum": sum(latencies),
        "paths": paths or {},
    }


def report(start: float, end: float, *items: dict[str, Any]) -> dict[str, Any]:
    return {"interval": [start, end], "buckets": list(BUCKETS), "series": list(items)}


def push(
    store: TelemetryStore, proxy: str, start: float, end: float, *items: dict[str, Any]
) -> bool:
    return store.ingest(proxy, parse_report(report(start, end, *items)), end)


# --- histogram math -----------------------------------------------------------------------------


def test_percentile_interpolates_inside_the_bucket() -> None:
    counts = empty_counts()
    counts[3] = 100  # (0.005, 0.01]
    assert quantile(0.5, counts) == pytest.approx(0.0075)
    assert quantile(0.99, counts) == pytest.approx(0.005 + 0.005 * 0.99)
    counts[0] = 100  # [0, 0.001]
    assert quantile(0.25, counts) == pytest.approx(0.0005)
    assert quantile(0.75, counts) == pytest.approx(0.0075)


def test_percentile_edges() -> None:
    assert quantile(0.5, empty_counts()) is None
    only_inf = empty_counts()
    only_inf[-1] = 3
    assert quantile(0.99, only_inf) == BUCKETS[-1]
    assert bucket_of(0.001) == 0 and bucket_of(0.0011) == 1 and bucket_of(99) == len(BUCKETS)


def test_merged_percentiles_are_not_averaged_percentiles() -> None:
    fast = histogram([0.002] * 99)
    slow = histogram([2.0])
    merged = empty_counts()
    add_counts(merged, fast)
    add_counts(merged, slow)
    # p99 of the union sits in the fast bucket; averaging p99s would say ~1 s.
    assert quantile(0.99, merged) is not None
    assert quantile(0.99, merged) <= 0.0025  # type: ignore[operator]
    assert (quantile(0.99, fast) + quantile(0.99, slow)) / 2 > 0.5  # type: ignore[operator]


def test_percentile_within_one_bucket_of_the_exact_value() -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(-4.5, 1.0) for _ in range(5000)]
    counts = histogram(latencies)
    ordered = sorted(latencies)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        estimate = quantile(q, counts)
        assert estimate is not None
        assert abs(bucket_of(estimate) - bucket_of(exact)) <= 1, (q, exact, estimate)


# --- windows in virtual time --------------------------------------------------------------------


def test_window_slides_out_old_slots() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0 - 5, T0, series(codes={"2xx": 10}))
    push(store, "fe-1", T0 + 25, T0 + 30, series(codes={"2xx": 5, "5xx": 5}))
    [svc] = store.services(T0 + 30, 60.0)
    assert svc["requests"] == 20 and svc["successRate"] == 0.75
    [svc] = store.services(T0 + 30, 10.0)
    assert svc["requests"] == 10 and svc["successRate"] == 0.5
    assert store.services(T0 + 30 + 80, 60.0) == []
    [svc] = store.services(T0 + 30 + 80, 600.0)
    assert svc["requests"] == 20


def test_rate_over_the_covered_span() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0, T0 + 10, series(codes={"2xx": 100}))
    [svc] = store.services(T0 + 10, 60.0)
    assert svc["rps"] == pytest.approx(10.0)


def test_ring_never_holds_more_than_ten_minutes() -> None:
    window = SeriesWindow()
    for i in range(3 * SLOT_COUNT):
        window.add(T0 + 10 * i, {"2xx": 1}, empty_counts(), 0.0, {}, T0)
    assert len(window.ring) == SLOT_COUNT
    assert window.totals(T0 + 10 * (3 * SLOT_COUNT - 1), 600.0).requests <= SLOT_COUNT


def test_paths_per_slot_are_bounded_to_the_busiest() -> None:
    window = SeriesWindow()
    for i in range(10):
        paths = {f"/p{i}-{j}": 1 for j in range(19)} | {"/hot": 100}
        window.add(T0, {"2xx": 119}, empty_counts(), 0.0, paths, T0)
    totals = window.totals(T0, 60.0)
    assert len(totals.paths) == MAX_PATHS_PER_SLOT
    assert totals.paths["/hot"] == 1000


def test_idle_series_are_swept() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0, T0 + 1, series(dst="default/old", codes={"2xx": 1}))
    push(store, "fe-1", T0 + 700, T0 + 701, series(dst="default/new", codes={"2xx": 1}))
    assert {k[2] for k in store.series} == {"default/new"}


def test_series_table_is_capped() -> None:
    store = TelemetryStore(max_series=3)
    items = [series(dst=f"default/s{i}", codes={"2xx": 1}) for i in range(5)]
    push(store, "fe-1", T0, T0 + 1, *items)
    assert len(store.series) == 3 and store.dropped_series == 2


# --- restarts and duplicates --------------------------------------------------------------------


def test_proxy_restart_adds_its_fresh_counts() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0, T0 + 5, series(codes={"2xx": 7}))
    # Restarted: same id, counters from zero, a new interval.
    push(store, "fe-1", T0 + 6, T0 + 8, series(codes={"2xx": 3}))
    [svc] = store.services(T0 + 8, 60.0)
    assert svc["requests"] == 10


def test_resent_report_is_not_counted_twice() -> None:
    store = TelemetryStore()
    assert push(store, "fe-1", T0, T0 + 5, series(codes={"2xx": 7}))
    assert not push(store, "fe-1", T0, T0 + 5, series(codes={"2xx": 7}))
    assert push(store, "fe-2", T0, T0 + 5, series(codes={"2xx": 1}))
    [svc] = store.services(T0 + 5, 60.0)
    assert svc["requests"] == 8 and store.duplicates == 1


# --- grouping -----------------------------------------------------------------------------------


def test_services_merge_sidecars_and_break_down_by_subset_and_route() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0, T0 + 5,
         series(latencies=[0.002] * 90, subset="version=v1", route="default/reviews#0"),
         series(latencies=[0.2] * 10, subset="version=v2", route="default/reviews#1"))  # fmt: skip
    push(store, "fe-2", T0, T0 + 5, series(latencies=[0.002] * 100, subset="version=v1"))
    push(store, "rv-1", T0, T0 + 5, series(latencies=[0.001] * 50, direction="inbound"))
    [svc] = store.services(T0 + 5, 60.0)
    assert svc["requests"] == 200
    assert set(svc["subsets"]) == {"version=v1", "version=v2"}
    assert svc["subsets"]["version=v2"]["requests"] == 10
    assert svc["routes"]["default/reviews#1"]["p50"] == pytest.approx(0.175)
    assert svc["p99"] > 0.1  # the slow 5% is in the tail of the merged histogram
    [inbound] = store.services(T0 + 5, 60.0, "inbound")
    assert inbound["requests"] == 50


def test_edges_and_mtls() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0, T0 + 5,
         series(codes={"2xx": 4}),
         series(codes={"2xx": 1}, subset="version=v2", mtls=False),
         series(src="default/reviews", dst="default/ratings", codes={"2xx": 2, "5xx": 2}))  # fmt: skip
    edges = store.edges(T0 + 5, 60.0)
    assert [(e["src"], e["dst"], e["requests"], e["mtls"]) for e in edges] == [
        ("default/frontend", "default/reviews", 5, False),
        ("default/reviews", "default/ratings", 4, True),
    ]
    assert edges[1]["successRate"] == 0.5
    assert [e["dst"] for e in store.edges(T0 + 5, 60.0, "default/ratings")] == ["default/ratings"]


def test_top_paths_busiest_first() -> None:
    store = TelemetryStore()
    push(store, "fe-1", T0, T0 + 10, series(codes={"2xx": 30}, paths={"/a": 10, "/b": 20}))
    push(store, "fe-2", T0, T0 + 10, series(codes={"2xx": 15}, paths={"/a": 15}))
    top = store.top("default/reviews", T0 + 10, 60.0)
    assert [(t["path"], t["requests"]) for t in top] == [("/a", 25), ("/b", 20)]
    assert top[0]["rps"] == pytest.approx(2.5)


# --- validation ---------------------------------------------------------------------------------


def test_overlong_paths_are_left_out_of_top_not_fatal() -> None:
    body = report(T0, T0 + 1, series(codes={"2xx": 2}, paths={"/" + "x" * 2000: 1, "/ok": 1}))
    [item] = parse_report(body).series
    assert item.paths == {"/ok": 1}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.update(interval=[5, 1]), "interval"),
        (lambda r: r.update(buckets=[0.1, 1]), "buckets"),
        (lambda r: r.update(series="x"), "series"),
        (lambda r: r["series"][0].update(direction="sideways"), "series[0].direction"),
        (lambda r: r["series"][0].update(dst="reviews"), "series[0].dst"),
        (lambda r: r["series"][0].update(counts=[1]), "series[0].counts"),
        (lambda r: r["series"][0]["counts"].__setitem__(0, -1), "series[0].counts[0]"),
        (lambda r: r["series"][0].update(codes={"2xx": 99}), "series[0].counts"),
        (lambda r: r["series"][0].update(codes={"200": 1}), "series[0].codes"),
        (lambda r: r["series"][0].update(sum=float("nan")), "series[0].sum"),
        (lambda r: r["series"][0].update(paths={f"/{i}": 1 for i in range(21)}), "series[0].paths"),
        (lambda r: r["series"][0].update(route="x" * 300), "series[0].route"),
    ],
)
def test_bad_reports_name_the_field(mutate: Any, field: str) -> None:
    body = report(T0, T0 + 1, series(codes={"2xx": 1}))
    mutate(body)
    with pytest.raises(ReportError) as caught:
        parse_report(body)
    assert caught.value.field == field
