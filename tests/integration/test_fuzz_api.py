"""Schemathesis against the real app: every operation of /api/v1/openapi.json, then linked scenarios.

Each test runs on SQLite and on PostgreSQL, against a live threaded server (one per database for the
module, seeded with a dataset, a pipeline and a deployed model) in MLOPS_AUTH=local, where requests
from this machine without credentials are the local admin's.

Checks: all of Schemathesis' (``--checks all``) plus ``refused_request_stores_nothing``: after a 4xx
to POST, PUT, PATCH or DELETE the database holds what it held before. What is narrowed or left out,
and why, is in ``CONFIG``. A run is derandomized: the same code gives the same requests.

The schema is loaded from the document this code builds (``test_served_document`` checks that the
server serves the same): ``schemathesis.pytest.from_fixture`` does not run under pytest 9.2 (it sets
``request.node._nodeid``, which pytest 9.2 no longer has).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from sqlalchemy import func, select, text

import api.openapi
from app import create_app
from config import Settings
from storage.models import Base
from tests.conftest import LiveServer, postgres_database

SEED = 20260101
MAX_EXAMPLES = 12  # per operation and phase: the file takes about two minutes on two cores
STATEFUL_SCENARIOS = 60
STATEFUL_STEPS = 15

# positive_data_acceptance: a request the document calls valid must get 2xx (or 401/403/404/409/429).
# Where validity depends on more than a schema can state, the operation may also refuse it, with:
POSITIVE = ["2xx", "401", "403", "404", "409", "429"]
CONTENT_THE_DOCUMENT_CANNOT_STATE = {
    # whether the file is a CSV, its encoding, header and row shapes: 400/413/415/422 by kind of problem
    ("uploadDataset",): ["400", "413", "415", "422"],
    # names (and a run's metric names): no control or invisible characters (Unicode categories Cc, Cf, Zl,
    # Zp, Cs, Co, Cn), not blank; the fuzzer's regexes cannot express Unicode categories
    ("renameDataset", "createRun", "finishRun"): ["422"],
    # the dataset must exist and the target and features be its columns; params follow the (stored) model kind
    ("createPipeline", "updatePipeline"): ["422"],
    # steps never go back, within a batch or from the last logged step
    ("logRun",): ["422"],
    # instances must match the model's input columns
    ("predictModel", "predictPipeline"): ["422"],
    # an event's payload is at most 64 KB once serialised
    ("publishEvent",): ["422"],
    # a seq beyond the head, or an epoch other than the current one, cannot be replayed: 410 history_gap
    ("listEvents",): ["410"],
}

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",  # no replay of earlier runs' failures: a run depends on the code alone
        # MLOPS_AUTH=local: requests without credentials are the local admin's, so generated (wrong)
        # credentials would only turn requests into 401s; tests/integration/test_security.py covers those.
        "with-security-parameters": False,
    },
    "checks": {
        # A body made invalid by its size (more than 10,000 instances) is past the 1 MB JSON limit
        # before anything reads it: 413 is the right refusal of such a body.
        "negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]},
    },
    "phases": {
        # Scenarios follow the document's own links only: Schemathesis' guesses from parameter names
        # (upload_id -> an "Upload" resource) add links that lead nowhere and crowd out the real ones.
        "stateful": {"inference": {"algorithms": []}},
    },
    "operations": [
        *({"include-operation-id": list(ops), "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE + extra}}}
          for ops, extra in CONTENT_THE_DOCUMENT_CANNOT_STATE.items()),
        # 503 is the health check's documented answer while a component is down (what load balancers
        # read); the test app runs no stats sampler, so "stats_sampler" goes down after a few seconds.
        {"include-operation-id": ["health"],
         "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}},
    ],
}

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Written by the app's own threads (training supervisors, the serving meter, health): judged apart.
BACKGROUND_TABLES = {"models", "prediction_minutes", "component_health", "alerts", "activity", "training_jobs"}
# Written by requests only: their whole content must be unchanged, not only their row counts
# (api_tokens.last_used_at moves whenever a token is used, so it is left out).
REQUEST_TABLES = {"datasets", "dataset_versions", "pipelines", "users", "api_tokens", "share_links"}


class Ledger:
    """What the database holds, taken before an unsafe request and compared after a refused one."""

    def __init__(self, db):
        self.db = db
        self.before: dict[str, Any] | None = None

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self.db.session() as session:
            for table in Base.metadata.sorted_tables:
                if table.name in BACKGROUND_TABLES:
                    continue
                if table.name in REQUEST_TABLES:
                    columns = [c for c in table.columns if c.name != "last_used_at"]
                    rows = session.execute(select(*columns).order_by(*table.primary_key.columns)).all()
                    out[table.name] = hashlib.sha256(json.dumps([list(map(str, r)) for r in rows]).encode()).hexdigest()
                else:
                    out[table.name] = session.scalar(select(func.count()).select_from(table))
            # Jobs are created by requests only; the feed's entries of a request name its user
            # (the training supervisors' own entries have no actor).
            out["training_jobs"] = session.scalar(text("SELECT count(*) FROM training_jobs"))
            out["activity of a user"] = session.scalar(text("SELECT count(*) FROM activity WHERE actor IS NOT NULL"))
        return out

    def take(self, case) -> None:
        self.before = self.state() if case.method.upper() in UNSAFE else None

    def refused_request_stores_nothing(self, ctx, response, case) -> None:
        if self.before is None or not 400 <= response.status_code < 500:
            return None
        after = self.state()
        if case.operation.label == "POST /datasets":
            # a refused upload is recorded in the activity feed on purpose ("Upload of x failed: ...")
            after["activity of a user"] = self.before["activity of a user"]
        changed = sorted(k for k in after if after[k] != self.before.get(k))
        assert not changed, f"a refused request ({response.status_code}) changed: {', '.join(changed)}"
        return None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_server(request, tmp_path_factory) -> Iterator[LiveServer]:
    """One app per database for the whole module: state builds up across operations, as in real use."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(postgres_database("mlops_fuzz")) if request.param == "postgresql" else ""
        settings = Settings(
            data_dir=tmp_path_factory.mktemp(request.param) / "data", database_url=database_url, background=False,
            min_free_disk_mb=0, auth="local", training_workers=1, training_queue=2, max_upload_mb=2,
        )
        server = LiveServer(create_app(settings))
        stack.callback(server.stop)
        server.ledger = Ledger(server.runtime.db)
        server.base_url = f"{server.url}/api/v1"
        seed(server.base_url, "first")
        yield server


def seed(base_url: str, name: str) -> None:
    """A dataset, its pipeline and a deployed model, so small ids and the models list lead somewhere."""
    rows = "".join(f"{'yes' if i % 2 else 'no'},{i % 7},{(i * 13) % 10}\n" for i in range(40))
    upload = requests.post(f"{base_url}/datasets", files={"file": (f"{name}.csv", f"label,a,b\n{rows}")}, timeout=30)
    assert upload.status_code == 201, upload.text
    body = {"name": name, "dataset_id": upload.json()["id"], "target": "label", "model": "linear"}
    pipeline = requests.post(f"{base_url}/pipelines", json=body, timeout=30)
    assert pipeline.status_code == 201, pipeline.text
    job = requests.post(f"{base_url}/pipelines/{pipeline.json()['id']}/train", timeout=30).json()
    for _ in range(600):
        job = requests.get(f"{base_url}/jobs/{job['id']}", timeout=30).json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    deployed = requests.post(f"{base_url}/models/{job['model_id']}/deploy", timeout=30)
    assert deployed.status_code == 200, deployed.text


# The document as this code serves it with MLOPS_AUTH=local.
DOCUMENT = api.openapi.document("/api/v1", auth_mode="local")
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))


@st.composite
def trainable_csvs(draw) -> str:
    """A CSV a pipeline can train on: the label first (the column the createPipeline link targets)."""
    rows = draw(st.integers(min_value=20, max_value=60))
    classes = draw(st.sampled_from([("yes", "no"), ("a", "b", "c")]))
    features = draw(st.lists(st.sampled_from(["x", "y", "size", "colour", "ratio"]), min_size=1, max_size=4, unique=True))
    random = draw(st.randoms(use_true_random=False))
    lines = [",".join(["label", *features])]
    for i in range(rows):
        cells = [random.choice(["red", "blue"]) if f == "colour" else f"{random.uniform(-5, 5):.3f}" for f in features]
        lines.append(",".join([classes[i % len(classes)], *cells]))
    return "\n".join(lines) + "\n"  # text: bytes would not validate as the schema's string


PRINTABLE_NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
# Operations whose "name" may be any printable text (POST /users has a pattern of its own).
FREE_NAMES = {"POST /pipelines", "PATCH /pipelines/{pipeline_id}", "PATCH /datasets/{dataset_id}", "POST /runs", "POST /tokens"}


@schema.hook("flatmap_case")
def some_cases_are_usable(context, case):
    """Half the valid uploads carry a well-formed CSV, half the valid names are printable.

    The document cannot say "a CSV" or "no invisible characters" (Unicode categories), so most drawn
    files and names are refused; without this, scenarios would rarely get past the upload and the
    pipeline to training, models and predictions. Invalid (negative) cases are left as drawn.
    """
    body, label = case.body, case.operation.label
    if case.meta is None or not case.meta.generation.mode.is_positive or not isinstance(body, dict):
        return st.just(case)
    if label == "POST /datasets" and isinstance(body.get("file"), (bytes, str)):
        usable = st.tuples(trainable_csvs(), PRINTABLE_NAMES).map(lambda v: {**body, "file": v[0], "name": v[1]})
    elif label in FREE_NAMES and isinstance(body.get("name"), str):
        usable = PRINTABLE_NAMES.map(lambda name: {**body, "name": name})
    else:
        return st.just(case)
    return st.one_of(st.just(case), usable.map(lambda new: _with_body(case, new)))


def _with_body(case, body):
    case.body = body
    return case


def test_served_document(fuzz_server):
    """The server serves the document fuzzed here; it is valid OpenAPI 3.1 and every $ref resolves."""
    served = requests.get(f"{fuzz_server.base_url}/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(DOCUMENT))
    schema.validate()
    refs = list(_refs(served))
    assert refs and not [ref for ref in refs if _resolve(served, ref) is None]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` points at, or None."""
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for part in ref[2:].split("/"):
        if not isinstance(node, dict):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node


def test_options_lists_the_methods_of_the_resource(fuzz_server):
    """RFC 9110: OPTIONS answers with the methods the target resource supports, and so does a 405."""
    for path, methods in {"/health": {"GET"}, "/datasets/1": {"GET", "PATCH", "DELETE"}, "/runs": {"POST"}}.items():
        for method in ("OPTIONS", "TRACE"):
            response = requests.request(method, f"{fuzz_server.base_url}{path}", timeout=10)
            allowed = {m.strip() for m in response.headers.get("Allow", "").split(",")} - {"HEAD", "OPTIONS", ""}
            assert allowed == methods, f"{method} {path}: Allow: {response.headers.get('Allow')}"


@schema.parametrize()
def test_operation(case, fuzz_server):
    ledger = fuzz_server.ledger
    ledger.take(case)
    response = case.call(base_url=fuzz_server.base_url)
    case.validate_response(response, additional_checks=[ledger.refused_request_stores_nothing])


# Operations that take an id the scenarios can obtain in MLOPS_AUTH=local (tokens need an account).
LINKED = {op.label for op in (r.ok() for r in schema.get_all_operations()) if "_id}" in op.path} - {"DELETE /tokens/{token_id}"}


def test_linked_scenarios(fuzz_server):
    """Scenarios that follow the document's links: an upload, its pipeline, training, the model, ...

    Failures are collected, not raised: Hypothesis would replay a failing scenario to shrink it against
    a server whose state has moved on, and report that instead. For the same reason a run that
    Hypothesis finds inconsistent (a rule enabled by an earlier answer) is started again.
    """
    seed(fuzz_server.base_url, "second")  # the operations' tests may have deleted the first
    ledger = fuzz_server.ledger
    failures: dict[str, str] = {}
    called: set[str] = set()

    class LinkedScenarios(schema.as_state_machine()):
        def before_call(self, case):
            ledger.take(case)
            called.add(case.operation.label)

        def get_call_kwargs(self, case):
            return {"base_url": fuzz_server.base_url}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                super().validate_response(response, case, additional_checks=[ledger.refused_request_stores_nothing], **kwargs)
            except BaseExceptionGroup as group:
                for failure in group.exceptions:
                    failures.setdefault(f"{case.operation.label}: {getattr(failure, 'title', failure)}", str(group))

    for _attempt in range(3):
        try:
            LinkedScenarios.run(settings=hypothesis.settings(
                max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, derandomize=True, database=None,
                deadline=None, suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
            ))
            break
        except hypothesis.errors.Flaky:
            continue
    unreached = sorted(LINKED - called)
    problems = [*failures.values(), *([f"no scenario reached {', '.join(unreached)}"] if unreached else [])]
    assert not problems, "\n\n".join(problems)
