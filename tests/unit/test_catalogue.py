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
