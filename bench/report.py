"""Results as JSON and Markdown tables (one table per measure, with ratios to the peers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.goals import goal_rows
from bench.stats import ratios_to_peers

Row = dict[str, Any]

FIXED_RATE_COLUMNS = (
    ("proxy", "proxy"),
    ("path", "path"),
    ("body", "body"),
    ("achieved_rps", "req/s"),
    ("cpu_us_per_req", "CPU µs/req"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("rss_idle_mib", "RSS idle MiB"),
    ("rss_load_mib", "RSS load MiB"),
    ("error", "errors"),
)
THROUGHPUT_COLUMNS = (
    ("proxy", "proxy"),
    ("path", "path"),
    ("body", "body"),
    ("rps_median", "req/s median"),
    ("rps_min", "min"),
    ("rps_max", "max"),
    ("proxy_cpu_util_median", "proxy CPU (cores)"),
    ("cpu_us_per_req_median", "CPU µs/req"),
    ("runs", "runs"),
    ("failed_runs", "failed"),
)
OPEN_LOOP_COLUMNS = (
    ("proxy", "proxy"),
    ("path", "path"),
    ("load", "load"),
    ("rate", "req/s due"),
    ("achieved_rps", "req/s done"),
    ("s_p50", "svc p50"),
    ("s_p90", "svc p90"),
    ("s_p99", "svc p99"),
    ("s_p999", "svc p99.9"),
    ("l_p50", "due p50"),
    ("l_p99", "due p99"),
    ("l_p999", "due p99.9"),
    ("slip_p99", "slip p99"),
    ("schedule", "schedule kept"),
    ("cpu_us_per_req", "CPU µs/req"),
    ("error", "errors"),
)
ADDED_COLUMNS = (
    ("proxy", "proxy"),
    ("path", "path"),
    ("load", "load"),
    ("service_p50", "svc p50"),
    ("service_p90", "svc p90"),
    ("service_p99", "svc p99"),
    ("service_p999", "svc p99.9"),
    ("latency_p50", "due p50"),
    ("latency_p99", "due p99"),
    ("latency_p999", "due p99.9"),
)
GOAL_COLUMNS = (
    ("goal", "goal"),
    ("measured", "measured"),
    ("ratio", "ratio (÷ HAProxy / ÷ nginx)"),
    ("verdict", "verdict"),
)
CONTROL_COLUMNS = (("measure", "measure"), ("value", "value"), ("unit", "unit"), ("goal", "goal"))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(rows: Sequence[Row], columns: Sequence[tuple[str, str]]) -> str:
    header = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "|" + "|".join(" --- " for _ in columns) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)


def ratio_table(rows: Sequence[Row], metrics: Sequence[tuple[str, str]]) -> str:
    """gossamer ÷ peer, one line per (path, body, peer), one column per metric."""
    cells: dict[tuple[str, str, str], dict[str, float | None]] = {}
    for metric, _ in metrics:
        for r in ratios_to_peers(rows, metric):
            key = (str(r["path"]), str(r["body"]), str(r["versus"]))
            cells.setdefault(key, {})[metric] = r["ratio"]  # type: ignore[assignment]
    if not cells:
        return "(no gossamer rows: no ratios)"
    columns = [("path", "gossamer path"), ("body", "body"), ("versus", "÷ peer")]
    columns += [(metric, f"{title} ratio") for metric, title in metrics]
    out_rows: list[Row] = []
    for (path, body, versus), values in sorted(cells.items()):
        rounded = {k: (f"{v:.2f}" if v is not None else None) for k, v in values.items()}
        out_rows.append({"path": path, "body": body, "versus": versus, **rounded})
    return table(out_rows, columns)


def open_loop_rows(rows: Sequence[Row]) -> list[Row]:
    """Flatten the generator's nested percentiles (ms) for the table."""
    out = []
    for row in rows:
        flat = dict(row)
        for prefix, kind in (("s", "service_ms"), ("l", "latency_ms")):
            for key, value in row[kind].items():
                flat[f"{prefix}_{key}"] = value
        flat["slip_p99"] = row["slip_ms"]["p99"]
        flat["schedule"] = "yes" if row["schedule_kept"] else f"no ({row['late']:,} late)"
        out.append(flat)
    return out


def _open_loop_section(dataplane: Row) -> list[str]:
    rows = open_loop_rows(dataplane["open_loop"])
    knee = dataplane.get("knee")
    parts = ["", "## Data plane: latency at fixed rates (open loop, 1 KiB)", ""]
    if knee:
        parts += [
            f"Knee (slowest proxy's closed-loop median): {knee['proxy']} {knee['path']}, "
            f"{knee['rps_median']:,} req/s. Times in ms: `svc` from the write (service time), "
            "`due` from the request's due time (counts waiting: coordinated omission "
            "corrected), `slip` how late the generator wrote with a connection free.",
            "",
        ]
    parts.append(table(rows, OPEN_LOOP_COLUMNS))
    parts += ["", "Latency added over direct at the same load (ms; proxy minus direct):", ""]
    parts.append(table(dataplane.get("added_latency", []), ADDED_COLUMNS))
    base = [r for r in rows if r["load"].endswith(" rps")]  # the goal's rate
    if base:
        parts += ["", f"Ratios at {base[0]['load']} (gossamer ÷ peer, same run):", ""]
        parts.append(
            ratio_table(
                base,
                (("cpu_us_per_req", "CPU/req"), ("s_p50", "svc p50"), ("s_p99", "svc p99")),
            )
        )
    return parts


def markdown(results: Row) -> str:
    meta = results["meta"]
    parts = [f"# gossamer benchmark {meta['date']} on {meta['host']}", ""]
    parts.append(
        f"{meta['cpus']} CPUs ({meta.get('cpu_model', '?')}, kernel {meta.get('kernel', '?')}, "
        f"load average at start {meta.get('load_average', '?')}), "
        f"mode {'quick' if meta['quick'] else 'full'}, "
        f"commit {meta.get('commit') or '?'}; {meta.get('versions', '')}"
        + (f"; PYTHONOPTIMIZE={meta['pythonoptimize']}" if meta.get("pythonoptimize") else "")
    )
    goals = goal_rows(results)
    if goals:
        parts += ["", "## Goals (issue 4), this run", ""]
        parts.append(table(goals, GOAL_COLUMNS))
    dataplane = results.get("dataplane")
    if dataplane:
        parts += ["", "## Data plane: fixed rate (cost per request, latency, memory)", ""]
        parts.append(table(dataplane["fixed_rate"], FIXED_RATE_COLUMNS))
        parts += ["", "Ratios (gossamer ÷ peer, same run):", ""]
        parts.append(
            ratio_table(
                dataplane["fixed_rate"],
                (("cpu_us_per_req", "CPU/req"), ("p50_ms", "p50"), ("p99_ms", "p99")),
            )
        )
        parts += ["", "## Data plane: max throughput (closed loop, proxies on one core)", ""]
        parts.append(table(dataplane["throughput"], THROUGHPUT_COLUMNS))
        parts += ["", "Ratios (gossamer ÷ peer, medians):", ""]
        parts.append(
            ratio_table(
                dataplane["throughput"],
                (("rps_median", "req/s"), ("cpu_us_per_req_median", "CPU/req")),
            )
        )
        if dataplane.get("open_loop"):
            parts += _open_loop_section(dataplane)
        for note in dataplane.get("notes", []):
            parts += ["", f"- {note}"]
    control = results.get("control")
    if control:
        parts += ["", "## Control plane", ""]
        parts.append(table(control["measures"], CONTROL_COLUMNS))
        for note in control.get("notes", []):
            parts += ["", f"- {note}"]
    return "\n".join(parts) + "\n"


def write(results: Row, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    meta = results["meta"]
    stem = f"{meta['date']}-{meta['host']}" + ("-quick" if meta["quick"] else "")
    json_path = directory / f"{stem}.json"
    md_path = directory / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def chart(results: Row, path: Path) -> Path | None:
    """Added latency against load (bench/chart.py), when matplotlib is installed."""
    from bench.chart import chart as draw

    return draw(results, path)
