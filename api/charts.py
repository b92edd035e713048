"""Chart export: ``GET <prefix>api/v1/charts/<chart>.<png|svg|pdf|html|json|csv>`` and the chart data."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.errors import ApiError
from api.params import int_param, query_param, runtime
from components.charts import CHARTS
from services import export

PARAMS = {"last", "width", "height", "theme", "download"}
MIN_SIZE, MAX_SIZE = 100, 4000  # px


def _query(chart_name: str):
    """Validate the query string; return the chart, its rows, the render options and whether to download."""
    unknown = sorted(set(request.args) - PARAMS)
    if unknown:
        raise ApiError(
            f"unknown query parameter(s): {', '.join(unknown)}",
            code="invalid_parameter",
            details={"parameters": unknown, "allowed": sorted(PARAMS)},
        )
    app_runtime = runtime()
    try:
        chart = export.chart_named(chart_name)
        last = query_param("last")
        last_s = export.parse_duration(last) if last else app_runtime.settings.chart_window_s  # empty: the default
        theme = query_param("theme")
        theme = export.check_theme("light" if theme is None else theme)
    except export.ExportError as exc:
        raise ApiError(str(exc), code=exc.code, status=exc.status, details=exc.details) from None
    options = {
        "width": int_param("width", 1000, minimum=MIN_SIZE, maximum=MAX_SIZE),
        "height": int_param("height", 560 if chart.name == "system_stats" else 400, minimum=MIN_SIZE, maximum=MAX_SIZE),
        "theme": theme,
    }
    download = bool(query_param("download"))
    rows = export.samples(app_runtime.log, chart, last_s, app_runtime.settings.history)
    return chart, rows, options, download


def register(bp: Blueprint) -> None:
    @bp.get("/charts")
    def list_charts():
        return jsonify(
            {
                "items": [
                    {"name": c.name, "title": c.title, "fields": c.fields, "formats": sorted(export.FORMATS)}
                    for c in CHARTS.values()
                ]
            }
        )

    @bp.get("/charts/<chart_name>/data")
    def chart_data(chart_name: str):
        chart, rows, _, _ = _query(chart_name)
        return jsonify({"chart": chart.name, "fields": chart.fields, "samples": rows})

    @bp.get("/charts/<chart_name>.<fmt>")
    def chart_export(chart_name: str, fmt: str):
        if fmt not in export.FORMATS:
            raise ApiError(
                f"unknown format {fmt!r}", code="unknown_format", status=404, details={"formats": sorted(export.FORMATS)}
            )
        chart, rows, options, download = _query(chart_name)
        try:
            body = export.render(chart, rows, fmt, **options)
        except export.ExportError as exc:
            raise ApiError(str(exc), code=exc.code, status=exc.status, details=exc.details) from None
        response = Response(body, mimetype=export.FORMATS[fmt].split(";")[0])
        if fmt in {"html", "csv"}:
            response.headers["Content-Type"] = export.FORMATS[fmt]
        if download:
            response.headers["Content-Disposition"] = f'attachment; filename="{chart.name}.{fmt}"'
        response.headers["Cache-Control"] = "no-store"
        return response
