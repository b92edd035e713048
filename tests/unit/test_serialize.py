import datetime as dt
import enum
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from events.serialize import NotSerializable, dumps, iso_utc, to_jsonable


class Color(enum.Enum):
    RED = "red"


def test_datetimes_become_iso_utc_with_z():
    aware = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert to_jsonable(aware) == "2026-11-26T10:00:00.000000Z"
    assert to_jsonable(dt.datetime(2026, 1, 2, 3, 4, 5, 6)) == "2026-01-02T03:04:05.000006Z"
    assert to_jsonable(pd.Timestamp("2026-11-26 12:00", tz="UTC")) == "2026-11-26T12:00:00.000000Z"
    assert iso_utc(dt.datetime(2026, 1, 1)).endswith("Z")


def test_numpy_pandas_decimal_enum_values():
    value = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "arr": np.arange(3),
        "series": pd.Series([1.5, 2.5]),
        "d": Decimal("1.25"),
        "e": Color.RED,
        "nan": float("nan"),
        "npnan": np.float64("nan"),
        "nat": pd.NaT,
        "td": dt.timedelta(seconds=90),
        "nested": [{"x": np.int32(1)}],
    }
    out = to_jsonable(value)
    assert out == {
        "i": 3,
        "f": 0.5,
        "b": True,
        "arr": [0, 1, 2],
        "series": [1.5, 2.5],
        "d": 1.25,
        "e": "red",
        "nan": None,
        "npnan": None,
        "nat": None,
        "td": 90.0,
        "nested": [{"x": 1}],
    }
    assert json.loads(dumps(out)) == out
    assert type(out["i"]) is int and type(out["b"]) is bool


def test_unserialisable_value_names_its_field():
    with pytest.raises(NotSerializable, match=r"data\.bad\[1\]: object"):
        to_jsonable({"bad": [1, object()]})
