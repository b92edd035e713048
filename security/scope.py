"""What a share link's page is given: its one chart's data, and URLs that keep the link's token."""

from __future__ import annotations

import json
import re
from typing import Any

import flask

from components.charts import CHARTS
from security.edge import SHARE_ENV, current_principal

_CONFIG_RE = re.compile(r'(<script id="_dash-config" type="application/json">)(.*?)(</script>)', re.S)


def share_prefix(prefix: str) -> str | None:
    """``<prefix>share/<token>/`` while serving a share link, else None."""
    if not flask.has_request_context():
        return None
    token = flask.request.environ.get(SHARE_ENV)
    return f"{prefix}share/{token}/" if token is not None else None


def snapshot(full: dict[str, Any]) -> dict[str, Any]:
    """The page snapshot, cut down to the shared chart's samples (and their fields) for a share link."""
    principal = current_principal()
    if principal is None or principal.kind != "share":
        return full
    chart = CHARTS[principal.chart]
    rows = full.get(chart.snapshot_key, [])
    if chart.source == "system_stats":
        keep = {"seq", "t", *chart.fields}
        rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
    empty = {"samples": [], "predictions": [], "latest_stats": None, "health": {"status": None, "components": {}}}
    return {**empty, "epoch": full["epoch"], "seq": full["seq"], chart.snapshot_key: rows}


def browser_config(config: dict[str, Any], prefix: str) -> dict[str, Any]:
    shared = share_prefix(prefix)
    return config if shared is None else {**config, "base": shared}


def index_config(config_html: str, prefix: str) -> str:
    """Dash's page config, pointed under the share link's path, without the Python version."""

    def rewrite(match: re.Match) -> str:
        config = json.loads(match.group(2))
        config.pop("python_version", None)
        shared = share_prefix(prefix)
        if shared is not None:
            for key in ("url_base_pathname", "requests_pathname_prefix"):
                if config.get(key):
                    config[key] = shared
        return match.group(1) + json.dumps(config).replace("</", "<\\/") + match.group(3)

    return _CONFIG_RE.sub(rewrite, config_html)


def event_filter(principal) -> tuple[frozenset[str] | None, Any]:
    """For a share link's socket: the event types it gets and how each payload is cut down."""
    if principal is None or principal.kind != "share":
        return None, None
    chart = CHARTS[principal.chart]
    if chart.source != "system_stats":
        return frozenset({chart.source}), None
    keep = frozenset({*chart.fields, "interval_s"})
    return frozenset({chart.source}), lambda data: {k: v for k, v in data.items() if k in keep}
