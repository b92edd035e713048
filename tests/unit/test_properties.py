"""Properties, checked by Hypothesis: the event catalogue and serialiser, CSV sniffing and ingest, the /ws parser.

- Any payload built from an event type's JSON Schema validates, and what ``validate`` returns
  round-trips through ``dumps`` / ``json.loads`` (and validates to itself); anything else raises
  ``InvalidEvent``, never another exception.
- Any bytes given to ``sniff`` / ``parse_and_profile`` give a profile or an ``IngestError`` with a
  documented code; a well-formed generated CSV parses to its own shape.
- Any text a client sends over /ws is answered without raising, with JSON frames a socket can send.
- The OpenAPI document's pattern for a chart's ``last`` accepts exactly what the API does.
"""

from __future__ import annotations

import json
import math
import re
import string
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, note, settings

from api.openapi import LAST_PATTERN
from events import ws
from events.catalogue import PAYLOADS, EventType, InvalidEvent, validate
from events.hub import Hub
from events.log import Event
from events.memory import MemoryEventLog
from events.serialize import NotSerializable, dumps, to_jsonable
from services import export, ingest
from services.ingest import IngestError

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FINITE = {"allow_nan": False, "allow_infinity": False}


def show(**inputs: Any) -> None:
    """Record the inputs for a failure report: Schemathesis' pytest plugin blanks Hypothesis' own
    "Failing test case" printout for every test in the session (it swaps out Hypothesis' printer)."""
    for name, value in inputs.items():
        text = repr(value)
        note(f"{name} = {text[:2000]}{' ...' if len(text) > 2000 else ''}")


# -- values from a JSON Schema (the catalogue's own, as the OpenAPI document publishes it) ----------

def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against ``schema``: the subset of JSON Schema pydantic writes for the catalogue."""
    if "$ref" in schema:
        return st.deferred(lambda: from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs))
    if "anyOf" in schema:
        return st.one_of([from_schema(option, defs) for option in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**63) - 1) + 1)
        return st.integers(min_value=low, max_value=schema.get("maximum", 2**63 - 1))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum", schema.get("exclusiveMinimum")),
                         max_value=schema.get("maximum"), exclude_min="exclusiveMinimum" in schema, **FINITE)
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), defs), max_size=5)
    if kind == "object":
        return _object(schema, defs)
    return JSON  # {} (pydantic's Any): any JSON value


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    extra = schema.get("additionalProperties", True)
    fixed = st.fixed_dictionaries(
        {name: from_schema(sub, defs) for name, sub in properties.items() if name in required},
        optional={name: from_schema(sub, defs) for name, sub in properties.items() if name not in required},
    )
    if not isinstance(extra, dict):
        return fixed
    more = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in properties), from_schema(extra, defs), max_size=4)
    return st.tuples(fixed, more).map(lambda parts: {**parts[1], **parts[0]})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(**FINITE) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def valid_payloads(draw) -> tuple[EventType, dict[str, Any]]:
    kind = draw(st.sampled_from(list(EventType)))
    schema = PAYLOADS[kind].model_json_schema()
    return kind, draw(from_schema(schema, schema.get("$defs", {})))


# -- the catalogue and the serialiser ----------------------------------------------------------------

@SETTINGS
@given(valid_payloads())
def test_a_payload_built_from_its_schema_validates_and_round_trips(case):
    kind, data = case
    show(kind=kind, data=data)
    validated_kind, payload = validate(kind.value, data)
    assert validated_kind is kind
    text = dumps(payload)
    assert json.loads(text) == payload
    assert validate(kind.value, json.loads(text))[1] == payload  # what a reader of the log gets validates to itself
    assert Event.from_raw(Event.create(7, "epoch", kind.value, payload).raw).data == payload


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"a": [leaf]}
    return leaf


ANYTHING = st.one_of(
    JSON,
    st.recursive(st.one_of(JSON, st.floats(), st.binary(max_size=8), st.sets(st.integers(), max_size=3),
                           st.decimals(), st.datetimes(), st.dates(), st.timedeltas(), st.uuids(),
                           st.builds(object), st.complex_numbers()),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.one_of(st.text(max_size=5), st.integers()),
                                                                               inner, max_size=3) | st.tuples(inner),
                 max_leaves=10),
)


@st.composite
def broken_payloads(draw) -> tuple[str, Any]:
    """A valid payload with one field removed, retyped or added; or anything at all; or an unknown type."""
    kind, data = draw(valid_payloads())
    how = draw(st.sampled_from(["drop", "retype", "add", "anything", "unknown type"]))
    if how == "drop" and data:
        data = {k: v for k, v in data.items() if k != draw(st.sampled_from(sorted(data)))}
    elif how == "retype" and data:
        data = {**data, draw(st.sampled_from(sorted(data))): draw(ANYTHING)}
    elif how == "add":
        data = {**data, draw(st.text(max_size=8)): draw(ANYTHING)}
    elif how == "anything":
        data = draw(ANYTHING)
    elif how == "unknown type":
        return draw(st.text(max_size=20).filter(lambda t: t not in {e.value for e in EventType})), data
    return kind.value, data


@SETTINGS
@given(broken_payloads())
def test_any_payload_validates_or_raises_invalid_event(case):
    name, data = case
    show(name=name, data=data)
    try:
        kind, payload = validate(name, data)
    except InvalidEvent:
        return
    assert json.loads(dumps(payload)) == payload  # what passes is publishable


@SETTINGS
@given(kind=st.sampled_from(list(EventType)), depth=st.integers(min_value=1, max_value=5000))
def test_a_deeply_nested_payload_raises_invalid_event(kind, depth):
    # built here, not drawn: Hypothesis itself cannot print a value this deep
    show(kind=kind, depth=depth)
    try:
        validate(kind.value, {"metrics": nested(depth, 1.0), "extra": nested(depth, None)})
    except InvalidEvent:
        return
    raise AssertionError("unknown fields passed")


@SETTINGS
@given(ANYTHING)
def test_to_jsonable_gives_json_or_not_serializable(value):
    show(value=value)
    try:
        plain = to_jsonable(value)
    except NotSerializable:
        return
    text = dumps(plain)
    assert json.loads(text) == plain


# -- CSV sniffing and ingest ---------------------------------------------------------------------------

DOCUMENTED = set(ingest.STATUS)
CSV_ALPHABET = st.sampled_from([*string.ascii_letters[:6], *"0123456789", ",", ";", "\t", '"', "'", "\n", "\r", " ",
                                ".", "-", "é", "ü", "€", "\x00", "\x1b", "\ufeff", "\u202e"])


def profile_of(data: bytes):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "upload.csv"
        path.write_bytes(data)
        return ingest.parse_and_profile(path, ingest.sniff(path))


CSV_LIKE_BYTES = st.one_of(
    st.binary(max_size=400),
    st.text(CSV_ALPHABET, max_size=300).flatmap(
        lambda text: st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252"]).map(
            lambda codec: text.encode(codec, errors="replace"))),
)


@SETTINGS
@given(CSV_LIKE_BYTES)
def test_any_bytes_profile_or_raise_a_documented_ingest_error(data):
    show(data=data)
    try:
        profile = profile_of(data)
    except IngestError as exc:
        assert exc.code in DOCUMENTED, exc.code
        assert exc.status == ingest.STATUS[exc.code] or 400 <= exc.status < 500
        assert str(exc)
        return
    assert profile.rows >= 1 and profile.columns
    json.dumps({"columns": profile.columns, "profile": profile.profile}, allow_nan=False)  # JSON-ready


NAME = st.text(string.ascii_letters, min_size=1, max_size=8)
CELLS = {
    "int64": st.integers(min_value=-10**6, max_value=10**6).map(str),
    "float64": st.floats(min_value=-1e6, max_value=1e6, **FINITE).map(lambda x: f"{x:.3f}"),
    "string": st.text(string.ascii_letters, min_size=1, max_size=6).map(lambda s: f"w{s}"),
}


@st.composite
def well_formed_csvs(draw) -> tuple[str, list[str], list[str], int, list[int]]:
    names = draw(st.lists(NAME, min_size=1, max_size=6, unique_by=str.lower))
    kinds = [draw(st.sampled_from(sorted(CELLS))) for _ in names]
    rows = draw(st.integers(min_value=1, max_value=40))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    table = []
    for _ in range(rows):
        row = [draw(st.one_of(CELLS[k], st.just(""))) for k in kinds]
        if not any(row):  # an all-empty row is a blank line, which CSV readers skip
            row[0] = draw(CELLS[kinds[0]])
        table.append(row)
    missing = [sum(1 for row in table if row[i] == "") for i in range(len(names))]
    text = "\n".join(delimiter.join(row) for row in [names, *table]) + "\n"
    return text, names, kinds, rows, missing


@SETTINGS
@given(well_formed_csvs())
def test_a_well_formed_csv_parses_to_its_shape(case):
    text, names, kinds, rows, missing = case
    show(csv=text)
    profile = profile_of(text.encode())
    assert profile.rows == rows
    assert [c["name"] for c in profile.columns] == names
    assert [c["missing"] for c in profile.columns] == missing
    for column, kind, absent in zip(profile.columns, kinds, missing):
        if absent < rows:  # a column with no value at all has no type to check
            assert column["dtype"] == kind, (column, kind)


# -- the /ws protocol parser ---------------------------------------------------------------------------

class FakeSocket:
    """What Session needs of a WebSocket; frames are encoded as the real one does, so unsendable text fails."""

    def __init__(self):
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None

    def send(self, text: str) -> None:
        assert isinstance(text, str)
        text.encode("utf-8")  # simple_websocket sends text frames as UTF-8
        self.sent.append(text)

    def close(self, reason: int = 1000, message: str = "") -> None:
        self.closed = (reason, message)


@pytest.fixture(scope="module")
def hub() -> Hub:
    event_log = MemoryEventLog(max_events=50, max_age_s=3600)
    for i in range(60):  # more than it keeps: a resume from the start meets a gap
        event_log.publish("activity_update", {"message": f"event {i}", "category": "test"})
    hub = Hub(event_log)
    hub.epoch, hub.seq = event_log.head()
    return hub


def session(hub: Hub) -> tuple[ws.Session, FakeSocket]:
    socket = FakeSocket()
    client = ws.Session(socket, hub, max_queue=100, batch_ms=0, heartbeat_s=5)
    client.epoch, client.last_sent = hub.log.head()
    return client, socket


MESSAGE_FIELDS = st.dictionaries(st.sampled_from(["kind", "after", "epoch", "t", "x"]), JSON, max_size=4)
CLIENT_TEXT = st.one_of(
    st.text(max_size=200),
    JSON.map(json.dumps),
    st.tuples(st.sampled_from(["resume", "ping", "pong", "hello", ""]), MESSAGE_FIELDS).map(
        lambda m: json.dumps({**m[1], "kind": m[0]})),
    st.tuples(st.sampled_from(["resume", "ping"]), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"',
                                                                    "-1", "true", "99999999999999999999", "[]"])).map(
        lambda m: f'{{"kind":"{m[0]}","after":{m[1]},"t":{m[1]},"epoch":{m[1]}}}'),
    st.integers(min_value=1, max_value=20_000).map(lambda depth: "[" * depth + "]" * depth),  # within 64 KB
)


@settings(SETTINGS, max_examples=300)
@given(text=CLIENT_TEXT)
def test_any_client_text_is_answered_without_raising(hub, text):
    show(text=text)
    client, socket = session(hub)
    client._on_client(text)
    for frame in socket.sent:
        message = json.loads(frame)
        assert isinstance(message, dict) and isinstance(message.get("kind"), str)
        if message["kind"] == "events":
            assert all(not math.isnan(e["seq"]) for e in message["events"])


# -- the document's duration pattern -------------------------------------------------------------------

@SETTINGS
@given(st.one_of(
    st.text("0123456789.smhdw", min_size=1, max_size=12),
    st.tuples(st.decimals(min_value=0, max_value=40_000_000, places=3), st.sampled_from("smhd")).map(
        lambda v: f"{v[0]}{v[1]}"),
))
def test_the_documented_last_pattern_accepts_what_the_api_does(raw):
    show(raw=raw)
    try:
        export.parse_duration(raw)
        accepted = True
    except export.ExportError:
        accepted = False
    assert bool(re.fullmatch(LAST_PATTERN, raw, re.ASCII)) == accepted  # ECMA-262 \d: ASCII digits
