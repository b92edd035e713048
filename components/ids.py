"""Every component id of the dashboard, defined once. Callbacks and JS (via the config store) use these."""

# App shell
WS = "ws"
CONFIG = "live-config"  # static settings for the browser: ws path, chart specs, api prefix
SNAPSHOT = "live-snapshot"  # state at first paint, with its epoch and seq
CONN_BADGE = "conn-badge"
HEALTH_BADGE = "health-badge"
PAGE = "page"

# Overview: KPI cards
KPI_CPU = "kpi-cpu"
KPI_CPU_SUB = "kpi-cpu-sub"
KPI_MEM = "kpi-mem"
KPI_MEM_SUB = "kpi-mem-sub"
KPI_DISK = "kpi-disk"
KPI_DISK_SUB = "kpi-disk-sub"
KPI_RSS = "kpi-rss"
KPI_RSS_SUB = "kpi-rss-sub"

# Overview: live charts
GRAPH_CPU = "graph-cpu"
GRAPH_MEM = "graph-mem"
GRAPH_DISK = "graph-disk"
GRAPH_NET = "graph-net"

# Overview: component health
HEALTH_STORE = "health-store"
HEALTH_LIST = "health-list"
GRAPH_SYSTEM = "graph-system"

# Routing
URL = "url"
NAVBAR = "navbar"


# Per-chart controls (pattern-matching ids)
def embed_toggle(chart: str) -> dict:
    return {"type": "embed-toggle", "chart": chart}


def embed_collapse(chart: str) -> dict:
    return {"type": "embed-collapse", "chart": chart}


def embed_snippet(chart: str) -> dict:
    return {"type": "embed-snippet", "chart": chart}
