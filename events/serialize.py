"""Turn payload values into plain JSON: datetimes, numpy and pandas scalars, Decimal, Enum, paths."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any


# An event is a few levels of objects and lists; past this, a value is a mistake or an attack, and
# converting it would end in a RecursionError (here, in pydantic or in json) instead of a clear refusal.
MAX_DEPTH = 100
# Past the largest float every JavaScript reader sees Infinity, and Python refuses to print an int of
# more than 4,300 digits: neither is a number a reader of the stream gets back.
MAX_INT = 2**1024


class NotSerializable(TypeError):
    """A payload holds a value that has no JSON form."""


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; naive datetimes are taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_iso(ts: str) -> dt.datetime:
    """The aware datetime of an ISO 8601 timestamp such as ``iso_utc`` writes (``Z`` or an offset)."""
    return dt.datetime.fromisoformat(ts)


def _float(value: float) -> float | None:
    # NaN and infinity have no JSON form; a missing reading is the honest translation.
    return value if math.isfinite(value) else None


def _decimal(value: Decimal) -> float | None:
    return None if value.is_nan() else _float(float(value))  # float() raises on a signalling NaN


def to_jsonable(value: Any, _path: str = "data", _depth: int = 0) -> Any:
    """Return ``value`` as JSON-ready builtins, or raise ``NotSerializable`` naming the field."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        if not -MAX_INT < value < MAX_INT:
            raise NotSerializable(f"{_path}: an integer of {value.bit_length():,} bits has no JSON form a reader keeps")
        return value
    if isinstance(value, float):
        return _float(value)
    if _depth >= MAX_DEPTH:
        raise NotSerializable(f"{_path}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _path, _depth + 1)
    if isinstance(value, dt.datetime):  # includes pandas.Timestamp
        if value != value:  # pandas.NaT
            return None
        try:
            return iso_utc(value)
        except OverflowError:  # year 1 at +02:00 or 9999-12-31 at -02:00 has no UTC time
            raise NotSerializable(f"{_path}: {value.isoformat()} is outside the years UTC can show") from None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{_path}.{k}", _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, f"{_path}[{i}]", _depth + 1) for i, v in enumerate(value)]
    try:  # these convert with their own recursion, which a cycle or a deep value can exhaust
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return to_jsonable(dataclasses.asdict(value), _path, _depth + 1)
        # numpy / pandas without importing them: scalars have .item(), arrays and Series .tolist().
        module = type(value).__module__.split(".")[0]
        if module in {"numpy", "pandas"}:
            if hasattr(value, "tolist"):
                return to_jsonable(value.tolist(), _path, _depth + 1)
            if hasattr(value, "item"):
                return to_jsonable(value.item(), _path, _depth + 1)
            if str(value) in {"NaT", "<NA>", "nan"}:
                return None
        if hasattr(value, "model_dump"):  # pydantic models
            return to_jsonable(value.model_dump(mode="json"), _path, _depth + 1)
    except RecursionError:
        raise NotSerializable(f"{_path}: {type(value).__name__} is nested too deeply") from None
    raise NotSerializable(f"{_path}: {type(value).__name__} has no JSON form")


def dumps(value: Any) -> str:
    """Compact JSON of already JSON-ready data."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
