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


def to_jsonable(value: Any, _path: str = "data") -> Any:
    """Return ``value`` as JSON-ready builtins, or raise ``NotSerializable`` naming the field."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _path)
    if isinstance(value, dt.datetime):  # includes pandas.Timestamp
        if value != value:  # pandas.NaT
            return None
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return _float(float(value))
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{_path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, f"{_path}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), _path)
    # numpy / pandas without importing them: scalars have .item(), arrays and Series .tolist().
    module = type(value).__module__.split(".")[0]
    if module in {"numpy", "pandas"}:
        if hasattr(value, "tolist"):
            return to_jsonable(value.tolist(), _path)
        if hasattr(value, "item"):
            return to_jsonable(value.item(), _path)
        if str(value) in {"NaT", "<NA>", "nan"}:
            return None
    if hasattr(value, "model_dump"):  # pydantic models
        return to_jsonable(value.model_dump(mode="json"), _path)
    raise NotSerializable(f"{_path}: {type(value).__name__} has no JSON form")


def dumps(value: Any) -> str:
    """Compact JSON of already JSON-ready data."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
