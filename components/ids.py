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

# Overview: the ML plane (KPIs from jobs, models and prediction volume; one line per serving model)
ML_STORE = "ml-store"  # jobs and models at render time, merged into the browser's collections
KPI_TRAININGS = "kpi-trainings"
KPI_TRAININGS_SUB = "kpi-trainings-sub"
KPI_DEPLOYED = "kpi-deployed"
KPI_DEPLOYED_SUB = "kpi-deployed-sub"
KPI_PREDICTIONS = "kpi-predictions"
KPI_PREDICTIONS_SUB = "kpi-predictions-sub"
GRAPH_PREDICTIONS = "graph-predictions"

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

# Datasets page
UPLOAD_ZONE = "upload-zone"
UPLOAD_INPUT = "upload-input"
UPLOAD_NAME = "upload-name"
UPLOAD_PROGRESS = "upload-progress"
UPLOAD_STATUS = "upload-status"
DATASETS_STORE = "datasets-store"
DATASETS_TABLE = "datasets-table"
DATASET_PROFILE = "dataset-profile"
UPLOADS_LIST = "uploads-list"  # uploads in progress anywhere (other tabs, scripts)

# Pipelines page
PIPELINES_STORE = "pipelines-store"
PIPELINES_TABLE = "pipelines-table"
PIPELINE_EDITING = "pipeline-editing"  # id of the pipeline in the form, or None when creating
PIPELINE_NAME = "pipeline-name"
PIPELINE_DATASET = "pipeline-dataset"
PIPELINE_TARGET = "pipeline-target"
PIPELINE_MODEL = "pipeline-model"
PIPELINE_PARAMS = "pipeline-params"
PIPELINE_FEATURES = "pipeline-features"
PIPELINE_SUBMIT = "pipeline-submit"
PIPELINE_CANCEL = "pipeline-cancel"
PIPELINE_FEEDBACK = "pipeline-feedback"
PIPELINE_FORM_TITLE = "pipeline-form-title"

# Training page
JOBS_STORE = "jobs-store"
JOBS_TABLE = "jobs-table"
CURVES_TITLE = "curves-title"
GRAPH_TRAIN_LOSS = "graph-train-loss"
GRAPH_TRAIN_SCORE = "graph-train-score"

# Models page
MODELS_STORE = "models-store"
MODELS_TABLE = "models-table"
MODEL_ENDPOINT = "model-endpoint"
MODEL_CURL = "model-curl"

# The jobs and models tables are drawn in the browser, which also writes live values straight into
# their cells: {"type": "job-bar" | "job-percent" | "job-eta" | "job-metrics" | "job-duration" |
# "model-predictions", "id": <job or model id>} (assets/mlops_live_ml.js; no callback uses them).

# Overview: activity feed; shell: toasts
ACTIVITY_STORE = "activity-store"
ACTIVITY_LIST = "activity-list"
TOASTS = "toasts"


# Pattern-matching id types of the table buttons the browser draws (it reads these names from the config).
DATASET_VIEW = "dataset-view"
PIPELINE_EDIT = "pipeline-edit"
PIPELINE_DELETE = "pipeline-delete"


def dataset_view(dataset_id: int) -> dict:
    return {"type": DATASET_VIEW, "id": dataset_id}


def pipeline_edit(pipeline_id: int) -> dict:
    return {"type": PIPELINE_EDIT, "id": pipeline_id}


def pipeline_delete(pipeline_id: int) -> dict:
    return {"type": PIPELINE_DELETE, "id": pipeline_id}

# Pipelines page: confirm deleting a pipeline that serves a deployed model
PIPELINE_CONFIRM = "pipeline-confirm"
PIPELINE_PENDING_DELETE = "pipeline-pending-delete"

# Navbar: who is logged in
USER_MENU = "user-menu"

# Access page: one's API tokens and (admins) the users
TOKEN_NAME = "token-name"
TOKEN_DAYS = "token-days"
TOKEN_CREATE = "token-create"
TOKEN_FEEDBACK = "token-feedback"
TOKEN_LIST = "token-list"
TOKEN_REVOKE = "token-revoke"
USER_NAME = "user-name"
USER_PASSWORD = "user-password"
USER_ROLE = "user-role"
USER_CREATE = "user-create"
USER_FEEDBACK = "user-feedback"
USER_LIST = "user-list"
USER_DELETE = "user-delete"
USER_SET_ROLE = "user-set-role"


def token_revoke(token_id: int) -> dict:
    return {"type": TOKEN_REVOKE, "id": token_id}


def user_delete(user_id: int) -> dict:
    return {"type": USER_DELETE, "id": user_id}


def user_set_role(user_id: int) -> dict:
    return {"type": USER_SET_ROLE, "id": user_id}
