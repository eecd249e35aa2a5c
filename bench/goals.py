"""The issue's goals, each with the figure measured and its ratio to the peer, from one run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]
MIB_PER_MB = 1e6 / 2**20  # the goals are in MB, /proc gives KiB


def _find(rows: Sequence[Row], **match: Any) -> Row | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _get(row: Row | None, key: str) -> float | None:
    value = row.get(key) if row else None
    return float(value) if isinstance(value, int | float) else None


def _ratio(mine: float | None, theirs: float | None) -> str:
    if mine is None or theirs is None or theirs == 0:
        return "-"
    return f"{mine / theirs:.2f}"


def _fmt(value: float | None, unit: str) -> str:
    return (
        "-" if value is None else f"{value:,.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    )


def _verdict(value: float | None, limit: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "not measured"
    met = value >= limit if higher_is_better else value <= limit
    return "met" if met else "not met"


def goal_rows(results: Row) -> list[Row]:
    dataplane = results.get("dataplane") or {}
    fixed, thru = dataplane.get("fixed_rate", []), dataplane.get("throughput", [])
    added = dataplane.get("added_latency", [])
    out: list[Row] = []

    mine = _get(_find(thru, proxy="gossamer", path="one-hop", body="1k"), "rps_median")
    theirs = _get(_find(thru, proxy="haproxy", path="one-hop", body="1k"), "rps_median")
    nginx = _get(_find(thru, proxy="nginx", path="one-hop", body="1k"), "rps_median")
    ratio = None if mine is None or not theirs else mine / theirs
    out.append(
        {
            "goal": "one sidecar's throughput on one core ≥ 1.0 x HAProxy (1 KiB, one hop)",
            "measured": f"{_fmt(mine, 'req/s')} vs HAProxy {_fmt(theirs, 'req/s')}",
            "ratio": f"{_ratio(mine, theirs)} / {_ratio(mine, nginx)}",
            "verdict": _verdict(ratio, 1.0, higher_is_better=True),
        }
    )

    base = [r for r in added if str(r.get("load", "")).endswith(" rps")]
    for path, label in (("mesh-tls", "with mTLS"), ("mesh", "plaintext, for reference")):
        mine = _get(_find(base, proxy="gossamer", path=path), "service_p99")
        peers = {
            p: _get(_find(base, proxy=p, path=path), "service_p99") for p in ("haproxy", "nginx")
        }
        out.append(
            {
                "goal": f"added p99 of the sidecar pair at 1,000 req/s, 1 KiB, {label} ≤ 0.25 ms",
                "measured": f"{_fmt(mine, 'ms')} (HAProxy {_fmt(peers['haproxy'], 'ms')}, "
                f"nginx {_fmt(peers['nginx'], 'ms')})",
                "ratio": f"{_ratio(mine, peers['haproxy'])} / {_ratio(mine, peers['nginx'])}",
                "verdict": _verdict(mine, 0.25) if path == "mesh-tls" else "-",
            }
        )

    for path, per in (("one-hop", 1), ("mesh", 2), ("mesh-tls", 2)):
        cpu = {
            p: _get(_find(fixed, proxy=p, path=path, body="1k"), "cpu_us_per_req")
            for p in ("gossamer", "haproxy", "nginx")
        }
        mine = cpu["gossamer"] / per if cpu["gossamer"] is not None else None
        out.append(
            {
                "goal": f"CPU per request per sidecar ≤ 100 µs ({path}, 1 KiB, 1,000 req/s"
                + (", the pair ÷ 2)" if per == 2 else ")"),
                "measured": f"{_fmt(mine, 'µs')}",
                "ratio": f"{_ratio(cpu['gossamer'], cpu['haproxy'])} / "
                f"{_ratio(cpu['gossamer'], cpu['nginx'])}",
                "verdict": _verdict(mine, 100),
            }
        )

    rss = {
        p: _get(_find(fixed, proxy=p, path="one-hop", body="1k"), "rss_idle_mib")
        for p in ("gossamer", "haproxy", "nginx")
    }
    mb = rss["gossamer"] / MIB_PER_MB if rss["gossamer"] is not None else None
    out.append(
        {
            "goal": "RSS of an idle sidecar, all its processes, ≤ 30 MB",
            "measured": f"{_fmt(mb, 'MB')} ({_fmt(rss['gossamer'], 'MiB')})",
            "ratio": f"{_ratio(rss['gossamer'], rss['haproxy'])} / "
            f"{_ratio(rss['gossamer'], rss['nginx'])}",
            "verdict": _verdict(mb, 30),
        }
    )

    measures = (results.get("control") or {}).get("measures", [])
    for m in measures:
        name = str(m["measure"])
        if name.startswith("change → last ACK") and "p99" in name and " p50" not in name:
            limit = 1000.0 if "1000 subscribers" in name else None
            out.append(
                {
                    "goal": name + (" < 1 s" if limit else " (no goal)"),
                    "measured": _fmt(float(m["value"]), "ms"),
                    "ratio": "-",
                    "verdict": _verdict(float(m["value"]), limit) if limit else "-",
                }
            )
        if name.startswith("memory per subscriber"):
            mb = float(m["value"]) / MIB_PER_MB
            out.append(
                {
                    "goal": f"{name} ≤ 0.5 MB",
                    "measured": _fmt(mb, "MB"),
                    "ratio": "-",
                    "verdict": _verdict(mb, 0.5),
                }
            )
    return out
