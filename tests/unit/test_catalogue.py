import datetime as dt
import json

import numpy as np
import pytest

from events.catalogue import PAYLOADS, EventType, InvalidEvent, validate
from events.serialize import dumps

# One valid payload per event type; the browser test for the 17 types reuses them.
from tests.samples import SAMPLE_PAYLOADS


def test_there_are_seventeen_types_each_with_a_schema_and_a_sample():
    assert len(EventType) == 17
    assert set(PAYLOADS) == set(EventType) == set(SAMPLE_PAYLOADS)


@pytest.mark.parametrize("kind", list(EventType), ids=lambda k: k.value)
def test_every_sample_validates_and_serialises(kind):
    event_type, payload = validate(kind.value, SAMPLE_PAYLOADS[kind])
    assert event_type is kind
    assert json.loads(dumps(payload)) == payload  # strict JSON (no NaN) that reads back the same


def test_unknown_type_is_a_clear_error():
    with pytest.raises(InvalidEvent, match="unknown event type.*known: training_progress"):
        validate("training_progres", {})


def test_bad_payload_names_the_field():
    data = dict(SAMPLE_PAYLOADS[EventType.TRAINING_PROGRESS], fraction=1.5)
    with pytest.raises(InvalidEvent) as info:
        validate("training_progress", data)
    assert "fraction" in str(info.value)
    assert info.value.errors[0]["field"] == "fraction"


def test_unknown_fields_are_rejected():
    data = dict(SAMPLE_PAYLOADS[EventType.HEALTH_CHANGE], colour="green")
    with pytest.raises(InvalidEvent, match="colour"):
        validate("health_change", data)


def test_numpy_and_datetimes_in_payloads_serialise():
    data = dict(SAMPLE_PAYLOADS[EventType.TRAINING_PROGRESS], step=np.int64(4), metrics={"loss": np.float32(0.25)})
    _, payload = validate("training_progress", data)
    assert payload["step"] == 4 and payload["metrics"] == {"loss": 0.25}
    pipeline = dict(SAMPLE_PAYLOADS[EventType.PIPELINE_CREATED], created_at=dt.datetime(2026, 1, 1))
    _, payload = validate("pipeline_created", pipeline)
    assert payload["created_at"] == "2026-01-01T00:00:00.000000Z"


def test_unserialisable_payload_is_an_invalid_event():
    with pytest.raises(InvalidEvent, match="metrics.loss: object"):
        validate("training_progress", dict(SAMPLE_PAYLOADS[EventType.TRAINING_PROGRESS], metrics={"loss": object()}))


def test_oversized_payload_is_refused():
    data = dict(SAMPLE_PAYLOADS[EventType.HEALTH_CHANGE], message="x" * 70_000)
    with pytest.raises(InvalidEvent, match="at most 65,536"):
        validate("health_change", data)


@pytest.mark.parametrize("kind, change, field", [
    ("model_deployed", {"previous_model_id": False}, "previous_model_id"),  # lax mode stored it as 0
    ("model_deployed", {"model_id": True}, "model_id"),
    ("training_progress", {"step": "3"}, "step"),
    ("training_progress", {"fraction": "0.5"}, "fraction"),
    ("training_progress", {"step": 3.0}, "step"),
    ("training_complete", {"duration_s": "2.5"}, "duration_s"),
    ("upload_complete", {"rows": False}, "rows"),
    ("system_stats", {"cpu_percent": True}, "cpu_percent"),
    ("dataset_created", {"columns": [{"name": "a", "dtype": "int64", "missing": "0"}]}, "columns.0.missing"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_payloads_are_strict_false_is_not_zero_and_text_is_not_a_number(kind, change, field):
    with pytest.raises(InvalidEvent) as info:
        validate(kind, dict(SAMPLE_PAYLOADS[EventType(kind)], **change))
    assert [e["field"] for e in info.value.errors] and all(e["field"].startswith(field) for e in info.value.errors)


def test_strict_payloads_still_take_what_publishers_hand_over():
    # an int where a float is declared, tuples for lists, datetimes for text, numpy scalars
    _, payload = validate("training_complete", dict(SAMPLE_PAYLOADS[EventType.TRAINING_COMPLETE], duration_s=2))
    assert payload["duration_s"] == 2.0
    stats = dict(SAMPLE_PAYLOADS[EventType.SYSTEM_STATS], cpu_per_core=(10, np.float64(15.5)), mem_used=np.int64(7),
                 load_1=np.float32(0.5))
    _, payload = validate("system_stats", stats)
    assert payload["cpu_per_core"] == [10.0, 15.5] and payload["mem_used"] == 7 and payload["load_1"] == 0.5
    _, payload = validate("dataset_created", dict(SAMPLE_PAYLOADS[EventType.DATASET_CREATED],
                                                  created_at=dt.datetime(2026, 1, 1), rows=np.int64(150)))
    assert payload["created_at"] == "2026-01-01T00:00:00.000000Z" and payload["rows"] == 150


@pytest.mark.parametrize("kind, change", [
    ("prediction_volume", {"interval_s": 0}),
    ("prediction_volume", {"interval_s": 5e-324}),  # count / interval_s would be inf
    ("prediction_volume", {"interval_s": 1e300}),  # t - interval_s would overflow a datetime
    ("prediction_volume", {"count": 10**30}),  # count / interval_s would overflow a float
    ("prediction_volume", {"latency_p95_ms": 1e300}),
    ("system_stats", {"interval_s": 0.0}),
    ("system_stats", {"interval_s": 86_401.0}),
    ("system_stats", {"cpu_percent": 1e300}),
    ("system_stats", {"cpu_per_core": [10.0, -1.0]}),
    ("system_stats", {"net_recv_bps": 1e300}),
    ("system_stats", {"load_1": -1.0}),
])
def test_numbers_charts_divide_by_or_draw_are_bounded(kind, change):
    with pytest.raises(InvalidEvent, match=next(iter(change))):
        validate(kind, dict(SAMPLE_PAYLOADS[EventType(kind)], **change))


def test_the_smallest_interval_a_producer_reports_is_accepted():
    for kind in ("prediction_volume", "system_stats"):
        assert validate(kind, dict(SAMPLE_PAYLOADS[EventType(kind)], interval_s=0.001))[1]["interval_s"] == 0.001


def test_a_deeply_nested_payload_is_an_invalid_event_not_a_recursion_error():
    deep: object = 1.0
    for _ in range(500):
        deep = {"a": [deep]}
    with pytest.raises(InvalidEvent, match="nested more than 100 levels"):
        validate("pipeline_created", dict(SAMPLE_PAYLOADS[EventType.PIPELINE_CREATED], params={"p": deep}))


def test_text_no_socket_can_carry_is_an_invalid_event():
    with pytest.raises(InvalidEvent, match="U\\+D800"):
        validate("pipeline_created", dict(SAMPLE_PAYLOADS[EventType.PIPELINE_CREATED], params={"p": "\ud800"}))
    with pytest.raises(InvalidEvent, match="data.id: an integer of"):
        validate("activity_update", dict(SAMPLE_PAYLOADS[EventType.ACTIVITY_UPDATE], id=10**5000))
