"""Chart export: the samples of a chart over a time range, rendered as PNG, SVG, PDF, HTML, JSON or CSV.

Images go through kaleido with one Chromium kept started per process (started on the first image,
about 3 s; each image after that about 0.3 s), instead of a new browser per image.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import io
import logging
import re
import threading
import warnings
from typing import Any

from components.charts import CHARTS, Chart
from components.figures import THEMES
from events.log import EventLog
from events.serialize import iso_utc, utc_now

log = logging.getLogger(__name__)
# plotly passes its kaleido options on every call; with a started server they are rightly unused.
warnings.filterwarnings("ignore", message="The kopts argument is ignored if using a server", category=UserWarning)

FORMATS = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d)", re.ASCII)  # fullmatch: no spaces, no "\n", no other digits
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A text cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"); tab and carriage return too, as some strip them before looking.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ExportError(ValueError):
    """A request the export cannot serve; ``code`` and ``status`` go into the API error."""

    def __init__(self, message: str, code: str = "invalid_parameter", status: int = 400, details: Any = None):
        super().__init__(message)
        self.code, self.status, self.details = code, status, details or {}


def parse_duration(raw: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d`` -> seconds."""
    match = _DURATION.fullmatch(raw)
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else 0.0
    if not 0 < seconds <= 366 * 86400:
        raise ExportError(f"'last' must look like 30s, 15m, 2h or 1d (at most 366d), got {raw!r}", details={"parameter": "last"})
    return seconds


def chart_named(name: str) -> Chart:
    chart = CHARTS.get(name)
    if chart is None:
        raise ExportError(
            f"unknown chart {name!r}", code="unknown_chart", status=404, details={"charts": sorted(CHARTS)}
        )
    return chart


def samples(event_log: EventLog, chart: Chart, last_s: float, history: int) -> list[dict[str, Any]]:
    """The chart's samples from the event log, newer than ``last_s`` seconds ago, oldest first."""
    _epoch, _head, events = event_log.recent(history)
    cutoff = iso_utc(utc_now() - dt.timedelta(seconds=last_s))
    out = []
    for event in events:
        if event.type == chart.source and event.ts >= cutoff:
            out.append({"t": event.ts, "seq": event.seq, **chart.row(event.data)})
    return out


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text that would start a formula gets a leading quote.

    Numbers stay numbers, negative ones included, and so does text that is just a number ("-7").
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def to_csv(chart: Chart, rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time", *chart.fields])
    for row in rows:
        writer.writerow([csv_cell(row["t"]), *(csv_cell(row[f]) for f in chart.fields)])
    return buffer.getvalue()


class ImageRenderer:
    """kaleido with a started browser, shared by the process; one image at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._started = False

    def render(self, figure, fmt: str, width: int, height: int) -> bytes:
        import kaleido
        import plotly.io as pio

        with self._lock:
            try:
                if not self._started:
                    kaleido.start_sync_server(silence_warnings=True)
                    self._started = True
                return pio.to_image(figure, format=fmt, width=width, height=height)
            except Exception as exc:  # no Chromium, a crashed browser: say so, and start afresh next time
                log.exception("image export failed")
                self._stop()
                raise ExportError(
                    f"image export is unavailable: {exc} (it needs Chromium on PATH)", code="export_unavailable", status=503
                ) from exc

    def _stop(self) -> None:
        if self._started:
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
            self._started = False

    def close(self) -> None:
        with self._lock:
            self._stop()


# kaleido's server is one per process, so is its renderer.
IMAGES = ImageRenderer()
atexit.register(IMAGES.close)


def render(chart: Chart, rows: list[dict[str, Any]], fmt: str, *, width: int, height: int, theme: str,
           renderer: ImageRenderer = IMAGES) -> bytes | str:
    """The export body for ``fmt``."""
    if fmt == "csv":
        return to_csv(chart, rows)
    figure = chart.figure(rows, theme=theme)
    figure.update_layout(width=width, height=height, uirevision=None)
    if fmt == "json":
        return figure.to_json()
    if fmt == "html":
        return figure.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    return renderer.render(figure, fmt, width, height)


def check_theme(theme: str) -> str:
    if theme not in THEMES:
        raise ExportError(f"'theme' must be one of {', '.join(THEMES)}", details={"parameter": "theme"})
    return theme

