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


@pytest.mark.parametrize("value", [Decimal("sNaN"), Decimal("-sNaN"), Decimal("NaN"), Decimal("Infinity"), Decimal("1e99999")])
def test_decimals_without_a_float_become_null(value):
    assert to_jsonable({"d": value}) == {"d": None}  # sNaN used to raise ValueError from float()


def test_values_nested_past_the_limit_are_not_serializable():
    deep: object = 1
    for _ in range(500):
        deep = [deep]
    with pytest.raises(NotSerializable, match="nested more than 100 levels deep"):
        to_jsonable(deep)
    loop: list = []
    loop.append(loop)
    with pytest.raises(NotSerializable, match="nested"):
        to_jsonable({"loop": loop})
    shallow: object = 1
    for _ in range(99):
        shallow = [shallow]
    assert json.loads(dumps(to_jsonable(shallow))) == shallow


def test_numbers_and_times_with_no_json_form_are_not_serializable():
    with pytest.raises(NotSerializable, match=r"data\.n: an integer of"):
        to_jsonable({"n": 2**1024})  # JavaScript reads Infinity; past 4,300 digits Python cannot print it
    assert to_jsonable(2**1024 - 1) == 2**1024 - 1
    with pytest.raises(NotSerializable, match="outside the years UTC can show"):
        to_jsonable(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))))
