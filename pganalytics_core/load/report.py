"""Reports of a load run: a text table, a versioned JSON document, an SVG plot, sample files.

JSON report (``schema_version`` :data:`REPORT_SCHEMA_VERSION`)::

    {
      "schema": "pganalytics-load-report", "schema_version": 1,
      "generated_at": "2026-11-26T22:59:00Z",      # UTC
      "passed": true,                              # every threshold passed
      "config": {"scenario", "workload", "target", "fake_service", "processes",
                 "client_breaker", "percentile_method", "timeout_s"},
      "model": {"name": "closed", "workers", "iterations", "duration_s"}
             | {"name": "open", "rate_per_s", "duration_s", "workers", "max_in_flight",
                "late_after_ms", "max_scheduler_lag_ms", "min_achieved_ratio", "max_late_ratio"},
      "environment": {"python", "implementation", "platform", "machine", "cpu_count",
                      "load_average", "pganalytics_core", "httpx"},
      "results": {"name", "model", "total_requests", "successful_requests", "failed_requests",
                  "error_rate", "rejections", "failures_by_type", "duration_s",
                  "requests_per_second", "started_at_unix_s",
                  "latency": {"count", "method", "min_ms", "avg_ms", "max_ms", "p50_ms",
                              "p95_ms", "p99_ms", "p99_9_ms"},
                  "open_model": null | {"target_rate_per_s", "achieved_rate_per_s",
                      "issued_requests", "dropped_requests", "late_requests", "late_after_ms",
                      "queued_requests", "service_time": {...}, "scheduler_lag": {...},
                      "saturated", "saturation_reasons"}},
      "thresholds": [{"metric", "condition", "actual", "passed"}, ...]
    }

Latencies are in milliseconds; a value that does not exist (p99.9 below 1,000 samples) is
``null``. ``rejections`` (added within version 1; absent means 0) counts operations the
client's own circuit breaker rejected: no request was made, so they are in no other field.
A field may appear within a version; one is only removed or changed in meaning with a new
``schema_version``.

The plot is an SVG written with the standard library: latency by percentile on the
HdrHistogram scale (x = ``log10(1 / (1 - q))``, so 90 %, 99 %, 99.9 % are evenly spaced),
with the service time beside it for the open model. Sample files (``.zip`` of
little-endian int64 arrays plus ``meta.json``) keep a run's raw samples, so that runs on
several machines can be merged exactly later.
"""

from __future__ import annotations

import array
import datetime
import json
import math
import os
import platform
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx

from pganalytics_core.load.model import ClosedModel, model_from_dict, model_to_dict
from pganalytics_core.load.result import (
    SAMPLE_ARRAYS,
    SAMPLE_COUNTS,
    LoadTestResult,
    RunSamples,
    build_result,
    unpack_samples,
)
from pganalytics_core.load.runner import Progress
from pganalytics_core.load.stats import LatencySummary, PercentileMethod, select_ranks
from pganalytics_core.load.thresholds import ThresholdResult

__all__ = [
    "REPORT_SCHEMA",
    "REPORT_SCHEMA_VERSION",
    "build_report",
    "environment",
    "format_progress",
    "format_summary",
    "read_report",
    "read_samples",
    "redact_url",
    "render_svg",
    "write_report",
    "write_samples",
    "write_svg",
]

#: The ``schema`` field of a JSON report.
REPORT_SCHEMA: Final = "pganalytics-load-report"
#: The ``schema_version`` written; :func:`read_report` accepts this version only.
REPORT_SCHEMA_VERSION: Final = 1

_SAMPLES_SCHEMA: Final = "pganalytics-load-samples"
_SAMPLES_VERSION: Final = 1
_SAMPLE_INTS: Final = ("started_at_unix_ns", "duration_ns", "schedule_ns", *SAMPLE_COUNTS)


def redact_url(url: str) -> str:
    """Return ``url`` without user, password, query or fragment (safe to show and store)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def environment() -> dict[str, object]:
    """Describe the machine and software a run measured on (no host names, no secrets)."""
    from pganalytics_core import __version__

    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
        "pganalytics_core": __version__,
        "httpx": httpx.__version__,
    }


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1 or value == 0:
        return f"{value:.3f}"
    return f"{value:.3g}"  # microsecond operations keep three significant digits


def _describe_model(result: LoadTestResult) -> str:
    model = result.model
    if isinstance(model, ClosedModel):
        size = f"{model.iterations} iterations" if model.iterations else f"{model.duration_s:g} s"
        return f"closed model: {model.workers} workers x {size}"
    return (
        f"open model: {model.rate_per_s:g} req/s for {model.duration_s:g} s, "
        f"{model.workers} workers, max {model.max_in_flight} in flight"
    )


def format_summary(
    result: LoadTestResult,
    verdicts: Sequence[ThresholdResult] = (),
    *,
    target: str | None = None,
) -> str:
    """Return a text summary table of a result and its threshold verdicts.

    Args:
        result: the run's result.
        verdicts: threshold verdicts to list (none: no verdict section).
        target: what was loaded, shown as given (pass it through :func:`redact_url`).

    Returns:
        Several lines of text, ending without a newline.
    """
    lines = [f"{result.name} ({_describe_model(result)})"]
    if target:
        lines.append(f"  target         {target}")
    lines.append(
        f"  requests       {result.total_requests} total, {result.successful_requests} ok, "
        f"{result.failed_requests} failed ({result.error_rate:.2%})"
    )
    if result.rejections:
        lines.append(
            f"  rejections     {result.rejections} by the client's own circuit breaker "
            "(no request made: not in the counts, latency or throughput)"
        )
    lines += [
        f"  duration       {result.duration_s:.2f} s, {result.requests_per_second:.1f} req/s",
        _latency_row("latency ms", result.latency),
        f"                 ({result.percentile_method} percentiles of "
        f"{result.sample_count} samples; p99.9 from 1000 samples on)",
    ]
    stats = result.open_model
    if stats is not None:
        lag = stats.scheduler_lag
        lines += [
            f"  arrival rate   target {stats.target_rate_per_s:g} req/s, achieved "
            f"{stats.achieved_rate_per_s:.1f} req/s; dropped {stats.dropped_requests}, "
            f"late {stats.late_requests} (> {stats.late_after_ms:g} ms), "
            f"queued {stats.queued_requests}",
            _latency_row("service ms", stats.service_time),
            f"  sched. lag ms  p50 {_fmt_ms(lag.p50_ms)}  p99 {_fmt_ms(lag.p99_ms)}  "
            f"max {_fmt_ms(lag.max_ms)}",
        ]
        if stats.saturated:
            lines.append("  SATURATED      the generator did not hold the schedule:")
            lines.extend(f"                 - {reason}" for reason in stats.saturation_reasons)
    if result.failures_by_type:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in result.failures_by_type)
        lines.append(f"  failures       {kinds}")
    if verdicts:
        lines.append("  thresholds")
        labels = [f"{v.threshold.metric} {v.threshold.expression}" for v in verdicts]
        width = max(map(len, labels))
        lines.extend(
            f"    {label:<{width}}  {v.actual_text:>12}  {'ok' if v.passed else 'FAILED'}"
            for label, v in zip(labels, verdicts, strict=True)
        )
        failed = sum(not v.passed for v in verdicts)
        outcome = f"FAILED ({failed} of {len(verdicts)} thresholds)" if failed else "PASSED"
        lines.append(f"  result         {outcome}")
    return "\n".join(lines)


def _latency_row(label: str, summary: LatencySummary) -> str:
    stats = ("min", "avg", "p50", "p95", "p99", "p99.9", "max")  # p99.9 is p99_9_ms
    cells = (f"{s} {_fmt_ms(getattr(summary, s.replace('.', '_') + '_ms'))}" for s in stats)
    return f"  {label:<13}  " + "  ".join(cells)


def format_progress(progress: Progress) -> str:
    """Return a one-line live progress status (no newline)."""
    done = f"{progress.finished}" + ("" if progress.planned is None else f"/{progress.planned}")
    line = (
        f"[{progress.model}] {progress.elapsed_s:6.1f} s  {done} requests  "
        f"{progress.requests_per_second:8.1f} req/s  {progress.failed} failed"
    )
    line += f"  {progress.dropped} dropped" if progress.dropped else ""
    return line + (f"  {progress.rejections} rejected" if progress.rejections else "")


def build_report(
    result: LoadTestResult,
    verdicts: Sequence[ThresholdResult] = (),
    *,
    config: Mapping[str, object] | None = None,
    generated_at: datetime.datetime | None = None,
) -> dict[str, object]:
    """Build the JSON report document (see the module docstring for the schema).

    Args:
        result: the run's result.
        verdicts: the threshold verdicts.
        config: how the run was configured (scenario, target, faults...); never put a
            secret here.
        generated_at: the report's time (default: now, UTC).

    Returns:
        A JSON-serializable dict.
    """
    when = generated_at or datetime.datetime.now(datetime.UTC)
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": all(v.passed for v in verdicts),
        "config": dict(config or {}),
        "model": model_to_dict(result.model),
        "environment": environment(),
        "results": result.as_dict(),
        "thresholds": [v.as_dict() for v in verdicts],
    }


def write_report(path: str | os.PathLike[str], report: Mapping[str, object]) -> None:
    """Write a JSON report to ``path`` (UTF-8, indented, atomically replaced)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", "utf-8")
    temporary.replace(target)


def read_report(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a JSON report written by :func:`write_report`.

    Raises:
        ValueError: not a report, or a schema version this code does not know.
    """
    data = json.loads(Path(path).read_text("utf-8"))
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        raise ValueError(f"{os.fspath(path)!r} is not a {REPORT_SCHEMA} document")
    if data.get("schema_version") != REPORT_SCHEMA_VERSION:
        raise ValueError(
            f"unsupported schema_version {data.get('schema_version')!r} "
            f"(this version reads {REPORT_SCHEMA_VERSION})"
        )
    return data


def write_samples(path: str | os.PathLike[str], result: LoadTestResult) -> None:
    """Save a result's raw samples (exact) for a later :func:`read_samples` and merge.

    Raises:
        ValueError: the result has no samples (``keep_samples=False``).
    """
    samples = result.samples
    if samples is None:
        raise ValueError(f"result {result.name!r} has no samples (keep_samples=False)")
    meta = {
        "schema": _SAMPLES_SCHEMA,
        "schema_version": _SAMPLES_VERSION,
        "name": result.name,
        "model": model_to_dict(result.model),
        "percentile_method": result.percentile_method,
        "failures_by_type": [list(pair) for pair in samples.failures_by_type],
        **{name: getattr(samples, name) for name in _SAMPLE_INTS},
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("meta.json", json.dumps(meta, indent=2))
        for name in SAMPLE_ARRAYS:
            archive.writestr(f"{name}.bin", getattr(samples, name))


def read_samples(path: str | os.PathLike[str]) -> LoadTestResult:
    """Load a result saved by :func:`write_samples`, with its samples (ready to merge).

    Raises:
        ValueError: not a samples file of a known version.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("meta.json"))
            blobs: dict[str, Any] = {n: archive.read(f"{n}.bin") for n in SAMPLE_ARRAYS}
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a samples file: {exc}") from None
    if meta.get("schema") != _SAMPLES_SCHEMA or meta.get("schema_version") != _SAMPLES_VERSION:
        raise ValueError(f"{os.fspath(path)!r} is not a samples file of version 1")
    if any(len(blob) % 8 for blob in blobs.values()):
        raise ValueError(f"{os.fspath(path)!r} has a truncated sample array")
    # queued and rejections were added within version 1: absent means 0.
    fields: dict[str, Any] = {
        name: int(meta.get(name, 0) if name in ("queued", "rejections") else meta[name])
        for name in _SAMPLE_INTS
    }
    fields["failures_by_type"] = tuple((str(k), int(v)) for k, v in meta["failures_by_type"])
    samples = RunSamples(**blobs, **fields)
    method: PercentileMethod = (
        "inclusive" if meta.get("percentile_method") == "inclusive" else "nearest-rank"
    )
    return build_result(str(meta["name"]), model_from_dict(meta["model"]), samples, method=method)


_WIDTH: Final = 760
_HEIGHT: Final = 440
_LEFT: Final = 70
_TOP: Final = 50
_PLOT_W: Final = _WIDTH - _LEFT - 170  # the legend is on the right
_PLOT_H: Final = _HEIGHT - _TOP - 60  # the x labels are below
_COLORS: Final = ("#1f77b4", "#ff7f0e")
_X_LABELS: Final = ("0%", "90%", "99%", "99.9%", "99.99%")


def _curve(samples: array.array[int], max_x: float) -> list[tuple[float, float]]:
    """(x, latency ms) points of a percentile curve, x on the HdrHistogram scale."""
    n = len(samples)
    xs = [i * max_x / 120 for i in range(121)]
    ranks = {x: min(max(math.ceil((1 - 10 ** (-x)) * n), 1), n) - 1 for x in xs}
    values = select_ranks(samples, set(ranks.values()))
    return [(x, values[ranks[x]] / 1e6) for x in xs]


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(s * magnitude for s in (1.0, 2.0, 2.5, 5.0, 10.0) if value <= s * magnitude)


def _svg(tag: str, text: str = "", /, **attributes: object) -> str:
    """One SVG element; ``stroke_width`` is written ``stroke-width``, floats to 0.1."""
    written = " ".join(
        f'{name.replace("_", "-")}="{f"{value:.1f}" if isinstance(value, float) else value}"'
        for name, value in attributes.items()
    )
    return f"<{tag} {written}>{escape(text)}</{tag}>\n" if text else f"<{tag} {written}/>\n"


def render_svg(result: LoadTestResult) -> str:
    """Render the latency-by-percentile plot of a result as an SVG document.

    Raises:
        ValueError: the result has no samples or no finished request.
    """
    samples = result.samples
    if samples is None or not samples.latencies_ns:
        raise ValueError("the plot needs a result with samples and finished requests")
    latencies = unpack_samples(samples.latencies_ns)
    max_x = max(min(4.0, math.log10(len(latencies))), 1.0)
    series = [("latency", _curve(latencies, max_x))]
    if result.open_model is not None and samples.service_times_ns:
        series.append(("service time", _curve(unpack_samples(samples.service_times_ns), max_x)))
    top_ms = _nice_ceiling(max(ms for _, points in series for _, ms in points))
    right, bottom, middle = _LEFT + _PLOT_W, _TOP + _PLOT_H, _TOP + _PLOT_H / 2

    def px(x: float) -> float:
        return _LEFT + x / max_x * _PLOT_W

    def py(ms: float) -> float:
        return bottom - ms / top_ms * _PLOT_H

    title = (
        f"{result.name}: {result.total_requests} requests, "
        f"{result.requests_per_second:.0f} req/s ({result.model_name} model)"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif" font-size="12">\n',
        _svg("rect", width=_WIDTH, height=_HEIGHT, fill="white"),
        _svg("text", title, x=_LEFT, y=28, font_size=15, font_weight="bold"),
    ]
    for i in range(6):  # horizontal grid and y labels
        ms, y = top_ms * i / 5, py(top_ms * i / 5)
        out.append(_svg("line", x1=_LEFT, y1=y, x2=right, y2=y, stroke="#ddd"))
        out.append(_svg("text", f"{ms:g}", x=_LEFT - 6, y=y + 4, text_anchor="end"))
    for tick in range(math.floor(max_x) + 1):
        x = px(tick)
        out.append(_svg("line", x1=x, y1=_TOP, x2=x, y2=bottom, stroke="#ddd"))
        out.append(_svg("text", _X_LABELS[tick], x=x, y=bottom + 18, text_anchor="middle"))
    axis = f"percentile ({result.percentile_method})"
    out.append(_svg("text", axis, x=_LEFT + _PLOT_W / 2, y=_HEIGHT - 14, text_anchor="middle"))
    rotate = f"rotate(-90 18 {middle:.1f})"
    out.append(_svg("text", "latency (ms)", x=18, y=middle, text_anchor="middle", transform=rotate))
    out.append(
        _svg("rect", x=_LEFT, y=_TOP, width=_PLOT_W, height=_PLOT_H, fill="none", stroke="#333")
    )
    for index, (label, points) in enumerate(series):
        color = _COLORS[index % len(_COLORS)]
        path = " ".join(f"{px(x):.1f},{py(ms):.1f}" for x, ms in points)
        out.append(_svg("polyline", fill="none", stroke=color, stroke_width=2, points=path))
        legend_y = _TOP + 16 + 20 * index
        start, end, y = right + 14, right + 38, legend_y - 4
        out.append(_svg("line", x1=start, y1=y, x2=end, y2=y, stroke=color, stroke_width=2))
        out.append(_svg("text", label, x=right + 44, y=legend_y))
    return "".join(out) + "</svg>\n"


def write_svg(path: str | os.PathLike[str], result: LoadTestResult) -> None:
    """Write :func:`render_svg`'s plot to ``path``."""
    Path(path).write_text(render_svg(result), "utf-8")
