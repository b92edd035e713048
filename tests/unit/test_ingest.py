"""CSV ingest against real datasets shipped by scikit-learn and plotly, and a generated corpus of broken files."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services import ingest
from services.ingest import Dialect, IngestError
from tests.conftest import need

REPO = Path(__file__).resolve().parents[2]
NULLABLE_TO_OURS = {"Int64": "int64", "UInt64": "int64", "Float64": "float64", "boolean": "bool", "string": "string"}


def package_dir(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # located, not imported: importing sklearn costs seconds
    need(spec is not None and spec.origin is not None, f"{package} is not installed (see requirements-dev.txt)")
    return Path(spec.origin).parent.joinpath(*parts)


SKLEARN = package_dir("sklearn", "datasets", "data") if importlib.util.find_spec("sklearn") else None
PLOTLY = package_dir("plotly", "package_data", "datasets") if importlib.util.find_spec("plotly") else None


def real_file(tmp_path: Path, directory: Path | None, name: str) -> Path:
    """A shipped dataset as a plain CSV path; gzip ones are decompressed into ``tmp_path``."""
    need(directory is not None and (directory / name).exists(), f"{name} is not shipped by the installed package")
    source = directory / name
    if not name.endswith(".gz"):
        return source
    target = tmp_path / name.removesuffix(".gz")
    with gzip.open(source, "rb") as packed, open(target, "wb") as plain:
        shutil.copyfileobj(packed, plain)
    return target


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def refusal(path: Path, **kwargs) -> IngestError:
    with pytest.raises(IngestError) as caught:
        ingest.parse_and_profile(path, **kwargs)
    return caught.value


def close(a: float | None, b: float, rel: float = 1e-9) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def assert_matches_pandas(path: Path, profile: ingest.Profile) -> None:
    """Rows, missing counts, types and numeric summaries agree with pandas reading the whole file at once."""
    d = profile.dialect
    layout = {"header": None, "names": list(d.names), "skiprows": 1} if d.names else {}
    whole = pd.read_csv(path, sep=d.delimiter, decimal=d.decimal, encoding=d.encoding, dtype_backend="numpy_nullable", **layout)
    assert profile.rows == len(whole)
    assert [c["name"] for c in profile.columns] == list(whole.columns)
    for column in profile.columns:
        values = whole[column["name"]]
        assert column["missing"] == int(values.isna().sum()), column
        if column["dtype"] == "datetime64":
            assert pd.to_datetime(values.dropna(), format="ISO8601").notna().all()
        else:
            assert column["dtype"] == NULLABLE_TO_OURS[str(values.dtype)], column
        stats = profile.profile[column["name"]]
        if column["dtype"] in ("int64", "float64"):
            numbers = values.dropna().astype("float64")
            assert stats["count"] == len(numbers)
            assert close(stats["mean"], numbers.mean()) and close(stats["min"], numbers.min())
            assert close(stats["max"], numbers.max())
            if len(numbers) > 1:
                assert close(stats["std"], numbers.std())
        elif column["dtype"] in ("string", "bool") and stats["top_exact"]:
            expected = values.dropna().astype(str).value_counts()
            assert stats["unique"] == len(expected)
            assert stats["top"][0]["count"] == expected.iloc[0]
    json.dumps(dataclasses.asdict(profile), allow_nan=False)  # JSON-ready: no NaN, no numpy scalars


# -- real datasets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, rows, dtypes",
    [
        ("linnerud_exercise.csv", 20, ["string"]),  # space-separated: not a supported delimiter, one column
        ("linnerud_physiological.csv", 20, ["string"]),
        ("diabetes_target.csv.gz", 441, ["float64"]),  # no header: the first value becomes the name
        ("diabetes_data_raw.csv.gz", 441, ["string"]),
    ],
)
def test_sklearn_datasets_parse_like_pandas(tmp_path, name, rows, dtypes):
    path = real_file(tmp_path, SKLEARN, name)
    profile = ingest.parse_and_profile(path)
    assert profile.rows == rows
    assert [c["dtype"] for c in profile.columns] == dtypes
    assert profile.dialect.delimiter == ","
    assert_matches_pandas(path, profile)


@pytest.mark.parametrize("name, rows, features", [("iris.csv", 150, 4), ("wine_data.csv", 178, 13), ("breast_cancer.csv", 569, 30)])
def test_sklearn_bundled_layout_gets_named_columns(tmp_path, name, rows, features):
    # The first line is "n_samples,n_features,class names": metadata, not a header. Read as a header,
    # pandas would quietly turn the surplus leading fields into an index.
    path = real_file(tmp_path, SKLEARN, name)
    profile = ingest.parse_and_profile(path)
    assert profile.dialect.names == (*(f"feature_{i}" for i in range(features)), "target")
    assert profile.rows == rows
    assert {c["dtype"] for c in profile.columns[:-1]} <= {"int64", "float64"}
    assert profile.columns[-1]["dtype"] == "int64"
    assert_matches_pandas(path, profile)


def test_first_line_with_fewer_fields_than_the_rows_is_ragged(tmp_path):
    path = write(tmp_path, "short_header.csv", "a,b\n1,2,3\n4,5,6\n")
    error = refusal(path)
    assert (error.code, error.status) == ("ragged_rows", 400)
    assert error.details == {"line": 2, "fields": 3, "expected": 2}


def test_a_headerless_file_is_refused_for_its_repeated_names(tmp_path):
    path = real_file(tmp_path, SKLEARN, "digits.csv.gz")
    error = refusal(path)
    assert error.code == "duplicate_columns" and "is the header line missing?" in str(error)
    assert error.details["duplicates"]["0"][:3] == [1, 2, 7]


@pytest.mark.parametrize(
    "name, rows, dtypes",
    [
        ("carshare.csv.gz", 249, ["float64", "float64", "float64", "int64"]),
        ("election.csv.gz", 58, ["string", "int64", "int64", "int64", "int64", "string", "string", "int64"]),
        ("experiment.csv.gz", 100, ["float64", "float64", "float64", "string", "string"]),
        (
            "gapminder.csv.gz",
            1704,
            ["string", "string", "int64", "float64", "int64", "float64", "string", "int64", "float64", "float64"],
        ),
        ("iris.csv.gz", 150, ["float64"] * 4 + ["string", "int64"]),
        ("medals.csv.gz", 3, ["string", "int64", "int64", "int64"]),
        ("stocks.csv.gz", 105, ["datetime64"] + ["float64"] * 6),
        ("tips.csv.gz", 244, ["float64", "float64", "string", "string", "string", "string", "int64"]),
        ("wind.csv.gz", 128, ["string", "string", "float64"]),
    ],
)
def test_plotly_datasets_parse_like_pandas(tmp_path, name, rows, dtypes):
    path = real_file(tmp_path, PLOTLY, name)
    profile = ingest.parse_and_profile(path, chunk_rows=64)  # several chunks even for small files
    assert profile.rows == rows
    assert [c["dtype"] for c in profile.columns] == dtypes
    assert_matches_pandas(path, profile)


def test_real_profiles_hold_what_a_person_expects(tmp_path):
    tips = ingest.parse_and_profile(real_file(tmp_path, PLOTLY, "tips.csv.gz")).profile
    assert tips["day"]["top"] == [
        {"value": "Sat", "count": 87},
        {"value": "Sun", "count": 76},
        {"value": "Thur", "count": 62},
        {"value": "Fri", "count": 19},
    ]
    assert tips["size"] == {
        "count": 244, "mean": pytest.approx(2.5697, abs=1e-4), "std": pytest.approx(0.9511, abs=1e-4), "min": 1, "max": 6
    }
    stocks = ingest.parse_and_profile(real_file(tmp_path, PLOTLY, "stocks.csv.gz")).profile
    assert stocks["date"] == {"count": 105, "min": "2018-01-01T00:00:00", "max": "2019-12-30T00:00:00"}
    election = ingest.parse_and_profile(real_file(tmp_path, PLOTLY, "election.csv.gz"))
    assert election.dialect.encoding == "utf-8" and election.profile["district"]["unique"] == 58
    assert election.profile["winner"]["top"] == [
        {"value": "Coderre", "count": 29}, {"value": "Bergeron", "count": 15}, {"value": "Joly", "count": 14}
    ]


# -- sniffing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, delimiter",
    [
        ("a;b;c\n1;2;3\n4;5;6\n", ";"),
        ("a\tb\tc\n1\t2\t3\n4\t5\t6\n", "\t"),
        ("a,b\n1,2\n", ","),
        ("only\n1\n2\n", ","),  # nothing splits the lines: fall back to comma
        ('name;note\n"Smith, J";"a, b, c"\n"Doe, A";"x, y"\n', ";"),  # commas inside quotes do not count
        ("id,text\n1,well; fine\n2,ok\n3,so; so; so\n", ","),  # stray semicolons: comma is the consistent one
    ],
)
def test_sniff_picks_the_delimiter_that_splits_lines_consistently(tmp_path, content, delimiter):
    assert ingest.sniff(write(tmp_path, "d.csv", content)).delimiter == delimiter


def test_semicolon_file_with_decimal_commas_gives_numbers(tmp_path):
    path = write(tmp_path, "eu.csv", "produit;prix;quantité\nPomme;1,25;3\nPoire;0,80;10\nMelon;2,5;1\n")
    dialect = ingest.sniff(path)
    assert (dialect.delimiter, dialect.decimal) == (";", ",")
    profile = ingest.parse_and_profile(path, dialect)
    assert [c["dtype"] for c in profile.columns] == ["string", "float64", "int64"]
    assert profile.profile["prix"]["max"] == 2.5


def test_tab_delimited_file_parses(tmp_path):
    path = write(tmp_path, "t.tsv", "a\tb\tc\n1\tx y\t2.5\n2\tz\t3.5\n")
    profile = ingest.parse_and_profile(path)
    assert profile.dialect.delimiter == "\t" and profile.rows == 2
    assert [c["dtype"] for c in profile.columns] == ["int64", "string", "float64"]


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    path = write(tmp_path, "bom.csv", codecs.BOM_UTF8 + "name,città\nÅsa,Zürich\nBo,Malmö\n".encode())
    dialect = ingest.sniff(path)
    assert dialect.encoding == "utf-8-sig"
    profile = ingest.parse_and_profile(path, dialect)
    assert [c["name"] for c in profile.columns] == ["name", "città"]
    assert {t["value"] for t in profile.profile["città"]["top"]} == {"Zürich", "Malmö"}


def test_latin1_file_decodes_accented_names(tmp_path):
    path = write(tmp_path, "l1.csv", "prénom;âge;ville\nJosé;31;Besançon\nZoë;27;Orléans\n", encoding="latin-1")
    dialect = ingest.sniff(path)
    assert dialect.encoding in {"cp1252", "latin-1"} and dialect.delimiter == ";"
    profile = ingest.parse_and_profile(path, dialect)
    assert [c["name"] for c in profile.columns] == ["prénom", "âge", "ville"]
    assert {t["value"] for t in profile.profile["ville"]["top"]} == {"Besançon", "Orléans"}


def test_cp1252_only_bytes_decode_as_windows_text(tmp_path):
    path = write(tmp_path, "w.csv", "item,price\n“quoted” thing,5\n€ sign,6\n", encoding="cp1252")
    profile = ingest.parse_and_profile(path)
    assert profile.dialect.encoding == "cp1252"
    assert {t["value"] for t in profile.profile["item"]["top"]} == {"“quoted” thing", "€ sign"}


def test_a_utf8_character_cut_by_the_sniff_boundary_is_still_utf8(tmp_path):
    header = "k,v\n"
    filler = "x," + "a" * 60 + "\n"
    body = header + filler * ((ingest.SNIFF_BYTES - len(header)) // len(filler))
    body += "y," + "b" * (ingest.SNIFF_BYTES - len(body.encode()) - 3)
    content = body.encode() + "é\n".encode() + b"z,c\n"
    assert content[ingest.SNIFF_BYTES - 1 : ingest.SNIFF_BYTES + 1] == "é".encode()  # split across the boundary
    path = write(tmp_path, "cut.csv", content)
    assert ingest.sniff(path).encoding == "utf-8"
    assert ingest.parse_and_profile(path).rows == content.count(b"\n") - 1


def test_latin1_after_an_ascii_prefix_switches_to_cp1252(tmp_path):
    ascii_rows = "".join(f"{i},plain text {i}\n" for i in range(6000))  # > 64 KB of ASCII
    path = write(tmp_path, "late.csv", ("id,city\n" + ascii_rows + "6000,Besançon\n").encode("latin-1"))
    assert path.stat().st_size > ingest.SNIFF_BYTES
    assert ingest.sniff(path).encoding == "utf-8"  # the prefix cannot tell
    profile = ingest.parse_and_profile(path, chunk_rows=1000)
    assert profile.dialect.encoding == "cp1252" and profile.rows == 6001
    assert profile.profile["city"]["unique"] == 6001


@pytest.mark.parametrize("last", [9000, 10], ids=["past-the-sniffed-prefix", "inside-it"])
def test_mixed_encodings_are_refused_with_the_line(tmp_path, last):
    head = "id,city\n1,Zürich\n".encode()
    rows = "".join(f"{i},plain\n" for i in range(2, last)).encode()
    path = write(tmp_path, "mixed.csv", head + rows + f"{last},Besançon\n".encode("latin-1"))
    error = refusal(path)
    assert (error.code, error.status) == ("bad_encoding", 415)
    assert str(error).startswith(f"line {last + 1} has a byte that is not UTF-8 (0xE7")
    assert error.details == {"line": last + 1, "byte": path.read_bytes().index(b"\xe7")}


# -- malformed corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, code, status, says",
    [
        (b"", "empty_file", 400, "empty (0 bytes)"),
        (b"\n\n\r\n   \n\t\n", "empty_file", 400, "only blank lines"),
        (codecs.BOM_UTF8 + b"\n \n", "empty_file", 400, "only blank lines"),
        (b"a,b,c\n", "header_only", 400, "header (3 columns) but no data rows"),
        (b"a,b,c\n\n\n", "header_only", 400, "no data rows"),
        (b"a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n", "ragged_rows", 400, "line 4 has 4 fields, the header has 3"),
        (b"a,b,c\n1,2,3,\n", "ragged_rows", 400, "is there a ',' at the end of the line?"),
        (b"a,b,a\n1,2,3\n", "duplicate_columns", 422, "'a' (columns 1 and 3)"),
        (b"a,,c\n1,2,3\n", "empty_column_name", 422, "column 2 has no name"),
        (b"a,b,\n1,2,\n", "empty_column_name", 422, "the header ends with ','"),
        (b",a,b\n0,1,2\n", "empty_column_name", 422, "save with index=False"),
        (b'a,b\n1,"open\n2,3\n', "parse_error", 400, "starts on line 2 is never closed"),
        (b"a,b\n1,2\x00\n", "not_csv", 415, "line 2 holds a NUL byte"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "not_csv", 415, "PNG image"),
        (b"PK\x03\x04" + bytes(30), "not_csv", 415, "xlsx"),
        (gzip.compress(b"a,b\n1,2\n"), "not_csv", 415, "gzip-compressed"),
        ("a,b\n1,2\n".encode("utf-16"), "bad_encoding", 415, "UTF-16"),
    ],
    ids=[
        "empty", "blank-lines", "bom-only", "header-only", "header-and-blank-lines", "ragged", "trailing-delimiter",
        "duplicate-names", "empty-name", "trailing-empty-name", "pandas-index", "unclosed-quote",
        "nul", "png", "xlsx", "gzip", "utf16",
    ],
)
def test_malformed_files_are_refused_with_a_reason(tmp_path, content, code, status, says):
    error = refusal(write(tmp_path, "bad.csv", content))
    assert (error.code, error.status) == (code, status)
    assert says in str(error) and error.message == str(error)


@pytest.mark.parametrize("content", [b"\r \x00", b"a\rb,\x00\n1,2\n"], ids=["cr-space-nul", "cr-in-header"])
def test_a_nul_after_a_bare_carriage_return_is_not_csv(tmp_path, content):
    # csv.reader refused the header up to the NUL ("new-line character seen in unquoted field"): a 500
    error = refusal(write(tmp_path, "cr.csv", content))
    assert (error.code, error.status) == ("not_csv", 415) and "NUL byte" in str(error)


def test_random_bytes_are_not_csv(tmp_path):
    noise = np.random.default_rng(7).bytes(4096)
    assert refusal(write(tmp_path, "noise.csv", noise)).code == "not_csv"
    no_nul = noise.replace(b"\x00", b"\x01")
    error = refusal(write(tmp_path, "noise2.csv", no_nul))
    assert error.code == "not_csv" and "control characters" in str(error)


def test_nul_past_the_sniffed_prefix_is_caught_while_parsing(tmp_path):
    rows = "".join(f"{i},{i * 2}\n" for i in range(20_000))
    path = write(tmp_path, "late_nul.csv", ("a,b\n" + rows).encode() + b"20000,4\x000000\n")
    ingest.sniff(path)  # the first 64 KB are clean
    error = refusal(path)
    assert error.code == "not_csv" and error.details["line"] == 20_002


def test_quoted_fields_with_newlines_and_delimiters(tmp_path):
    content = 'id,comment,score\n1,"first line\nsecond, with comma",3.5\n2,"say ""hi""; then\r\nleave",4\n3,plain,\n'
    profile = ingest.parse_and_profile(write(tmp_path, "q.csv", content))
    assert profile.rows == 3
    assert [c["dtype"] for c in profile.columns] == ["int64", "string", "float64"]
    values = {t["value"] for t in profile.profile["comment"]["top"]}
    assert values == {"first line\nsecond, with comma", 'say "hi"; then\r\nleave', "plain"}
    assert profile.columns[2]["missing"] == 1


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_any_line_ending_parses(tmp_path, newline):
    path = write(tmp_path, "nl.csv", newline.join(["a,b", "1,x", '2,"y' + newline + 'z"', "3,"]) + newline)
    profile = ingest.parse_and_profile(path)
    assert profile.rows == 3 and profile.columns[1]["missing"] == 1
    assert {t["value"] for t in profile.profile["b"]["top"]} == {"x", "y" + newline + "z"}


def test_ragged_line_is_the_physical_line_after_multiline_fields(tmp_path):
    rows = "".join(f"{i},x,1\n" for i in range(30))
    content = 'a,b,c\n1,"two\nlines",1\n\n' + rows + "9,y,1,extra\n"
    error = refusal(write(tmp_path, "r.csv", content), chunk_rows=7)
    # header 1, quoted record 2-3, blank 4, 30 rows 5-34: the wide row is line 35 (pandas would say 34).
    assert str(error).startswith("line 35 has 4 fields, the header has 3; quote values that contain ','")


# -- types and statistics across chunks --------------------------------------------------------------


def test_types_widen_across_chunks_and_do_not_depend_on_chunk_size(tmp_path):
    rows = ["n,mixed,late,flag,when,maybe_date"]
    for i in range(12):
        rows.append(
            f"{i if i < 6 else i + 0.5},{i if i < 9 else 'x'},{'' if i < 6 else i},{'True' if i % 2 else 'False'},"
            f"2024-01-{i + 1:02d},{'2024-02-01' if i < 10 else 'soon'}"
        )
    path = write(tmp_path, "w.csv", "\n".join(rows) + "\n")
    whole = pd.read_csv(path, dtype_backend="numpy_nullable")
    results = [ingest.parse_and_profile(path, chunk_rows=size) for size in (1, 3, 5, 1000)]
    for profile in results:
        assert profile.columns == results[-1].columns
        assert profile.profile == results[-1].profile
    columns = {c["name"]: c for c in results[0].columns}
    assert {name: c["dtype"] for name, c in columns.items()} == {
        "n": "float64", "mixed": "string", "late": "int64",
        "flag": "bool", "when": "datetime64", "maybe_date": "string",
    }
    assert columns["late"]["missing"] == 6
    for name in ("n", "mixed", "late", "flag", "maybe_date"):
        assert columns[name]["dtype"] == NULLABLE_TO_OURS[str(whole[name].dtype)]
    profile = results[0].profile
    assert profile["flag"]["top"] == [{"value": False, "count": 6}, {"value": True, "count": 6}]
    assert profile["when"] == {"count": 12, "min": "2024-01-01T00:00:00", "max": "2024-01-12T00:00:00"}
    assert profile["mixed"]["unique"] == 10 and {"value": "x", "count": 3} in profile["mixed"]["top"]
    assert profile["late"]["min"] == 6 and isinstance(profile["late"]["min"], int)


def test_unique_counts_stop_past_the_cap_and_keep_frequent_values(tmp_path):
    rng = np.random.default_rng(3)
    ids = [f"id{i}" for i in range(12_000)]
    values = ids + ["hot"] * 3000 + ["warm"] * 1500
    rng.shuffle(values)
    frame = pd.DataFrame({"key": values, "small": rng.choice(["a", "b", "c"], len(values))})
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)
    profile = ingest.parse_and_profile(path, chunk_rows=2000).profile
    assert profile["key"]["unique"] == ">10000" and profile["key"]["top_exact"] is False
    assert [t["value"] for t in profile["key"]["top"][:2]] == ["hot", "warm"]
    assert profile["key"]["top"][0]["count"] <= 3000
    assert 3000 - profile["key"]["top"][0]["count"] <= len(values) / ingest.UNIQUE_CAP  # Misra-Gries bound
    exact = frame["small"].value_counts()
    assert profile["small"]["unique"] == 3 and profile["small"]["top_exact"] is True
    assert {t["value"]: t["count"] for t in profile["small"]["top"]} == exact.to_dict()


def test_a_numeric_column_that_turns_to_text_after_many_values_says_so(tmp_path):
    path = write(tmp_path, "codes.csv", "code\n" + "".join(f"{i}\n" for i in range(12_000)) + "A1B\nA1B\n")
    profile = ingest.parse_and_profile(path, chunk_rows=4000)
    assert profile.columns[0]["dtype"] == "string"
    stats = profile.profile["code"]
    assert stats["count"] == 12_002 and stats["unique"] == ">10000" and stats["top_exact"] is False
    assert stats["top"][0] == {"value": "A1B", "count": 2}


def test_wide_files_count_fewer_distinct_values_per_column(tmp_path):
    width = 1000  # COUNT_BUDGET // 1000 = 500 distinct values tracked per column
    header = ",".join(f"c{i}" for i in range(width))
    rest = ",".join("a" for _ in range(width - 1))
    path = write(tmp_path, "wide_text.csv", header + "\n" + "".join(f"v{i},{rest}\n" for i in range(600)))
    profile = ingest.parse_and_profile(path).profile
    assert profile["c0"]["unique"] == ">500" and profile["c0"]["top_exact"] is False
    assert profile["c1"] == {"count": 600, "unique": 1, "top": [{"value": "a", "count": 600}], "top_exact": True}


def test_nan_and_infinity_become_json_null(tmp_path):
    path = write(tmp_path, "inf.csv", "x,y,z\n1.5,inf,\n2.5,1,\n")
    profile = ingest.parse_and_profile(path)
    assert profile.profile["y"]["max"] is None and profile.profile["y"]["mean"] is None
    assert profile.profile["x"]["std"] == pytest.approx(math.sqrt(0.5))
    assert profile.columns[2] == {"name": "z", "dtype": "float64", "missing": 2}
    assert profile.profile["z"] == {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    json.dumps(dataclasses.asdict(profile), allow_nan=False)


def test_200k_rows_in_10k_chunks_match_whole_file_statistics(tmp_path):
    rng = np.random.default_rng(42)
    n = 200_000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "value": rng.normal(1e6, 1e3, n),  # a large mean makes naive one-pass variance lose digits
            "ratio": rng.random(n),
            "count": rng.integers(-50, 50, n),
            "label": rng.choice(["red", "green", "blue"], n),
        }
    )
    frame.loc[rng.choice(n, 500, replace=False), "ratio"] = np.nan
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    calls: list[tuple[int, int]] = []
    profile = ingest.parse_and_profile(path, chunk_rows=10_000, progress=lambda rows, done: calls.append((rows, done)))
    assert len(calls) == 20
    assert all(b[0] > a[0] and b[1] >= a[1] for a, b in zip(calls, calls[1:]))
    assert calls[-1] == (n, path.stat().st_size) and profile.bytes_read == path.stat().st_size
    assert profile.rows == n
    for name in ("id", "value", "ratio", "count"):
        stats, column = profile.profile[name], frame[name].dropna()
        expected = {"mean": column.mean(), "std": column.std(), "min": column.min(), "max": column.max()}
        for key, value in expected.items():
            assert math.isclose(stats[key], value, rel_tol=1e-9), (name, key, stats[key], value)
    assert profile.columns[2] == {"name": "ratio", "dtype": "float64", "missing": 500}
    assert_matches_pandas(path, profile)


def test_wide_files_get_fewer_rows_per_chunk(tmp_path):
    width = 2000
    header = ",".join(f"c{i}" for i in range(width))
    row = ",".join("1" for _ in range(width))
    path = write(tmp_path, "wide.csv", header + "\n" + (row + "\n") * 1200)
    calls: list[int] = []
    profile = ingest.parse_and_profile(path, progress=lambda rows, done: calls.append(rows))
    assert profile.rows == 1200 and calls == [500, 1000, 1200]  # CELL_BUDGET // 2000 columns


def test_progress_can_stop_a_parse(tmp_path):
    path = write(tmp_path, "p.csv", "a\n" + "1\n" * 100)

    def stop(rows: int, done: int) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        ingest.parse_and_profile(path, chunk_rows=10, progress=stop)


def test_an_explicit_dialect_is_used_as_given(tmp_path):
    path = write(tmp_path, "x.csv", "a|b\n1|2\n")
    profile = ingest.parse_and_profile(path, Dialect(delimiter=";"))
    assert [c["name"] for c in profile.columns] == ["a|b"] and profile.dialect.delimiter == ";"


# -- memory ------------------------------------------------------------------------------------------


def big_csv(path: Path, target_bytes: int) -> int:
    """A mixed-type CSV of about ``target_bytes``: a few 50k-row blocks, built vectorised, written in turn."""
    rng = np.random.default_rng(0)
    strings = np.dtypes.StringDType()
    labels = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"], dtype=strings)
    days = np.datetime_as_string(np.datetime64("2020-01-01") + np.arange(1500)).astype(strings)
    n, blocks = 50_000, []
    for b in range(4):
        parts = [
            np.arange(b * n, (b + 1) * n).astype(strings),
            np.round(rng.normal(10, 3, n), 6).astype(strings),
            np.round(rng.exponential(2, n), 6).astype(strings),
            labels[rng.integers(0, len(labels), n)],
            np.where(rng.random(n) < 0.3, "True", "False").astype(strings),
            days[rng.integers(0, len(days), n)],
            np.strings.add("note ", rng.integers(0, 10**6, n).astype(strings)),
        ]
        row = parts[0]
        for part in parts[1:]:
            row = np.strings.add(np.strings.add(row, ","), part)
        blocks.append(("\n".join(row.tolist()) + "\n").encode())
    rows = 0
    with open(path, "wb") as out:
        out.write(b"id,x,y,label,flag,day,note\n")
        while out.tell() < target_bytes:
            out.write(blocks[rows // n % len(blocks)])
            rows += n
    return rows


MEASURE = textwrap.dedent(
    """
    import json, sys, time
    from services import ingest

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    ingest.parse_and_profile(sys.argv[2])  # warm up lazy imports before the baseline
    before = status("VmRSS")
    started = time.perf_counter()
    profile = ingest.parse_and_profile(sys.argv[1])
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": profile.rows, "seconds": seconds, "before": before, "peak": status("VmHWM")}))
    """
)


def test_memory_stays_flat_on_a_100mb_file(tmp_path):
    need(Path("/proc/self/status").exists(), "peak RSS is read from /proc (Linux)")
    path = tmp_path / "big.csv"
    rows = big_csv(path, 100 * 2**20)
    size = path.stat().st_size
    small = write(tmp_path, "small.csv", "a,b,c\n1,x,2020-01-01\n2,y,2020-01-02\n")
    # A fresh interpreter: its peak RSS (VmHWM) is this parse's alone, not pytest's history.
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(small)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=True,
    )
    measured = json.loads(done.stdout)
    growth = measured["peak"] - measured["before"]
    print(
        f"\n{size / 2**20:.0f} MB, {rows:,} rows in {measured['seconds']:.1f} s: "
        f"{rows / measured['seconds']:,.0f} rows/s, {size / 2**20 / measured['seconds']:.1f} MB/s, "
        f"peak RSS growth {growth / 2**20:.0f} MB"
    )
    assert measured["rows"] == rows
    assert growth < 60 * 2**20, f"peak RSS grew by {growth / 2**20:.0f} MB while parsing a {size / 2**20:.0f} MB file"
