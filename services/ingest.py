"""CSV upload core: sniff, parse and profile a file in bounded memory, and say plainly what is wrong.

Nothing here knows about Flask or the database (the upload endpoint streams the file to disk itself).
``sniff`` guesses encoding and delimiter from the first 64 KB, and ``parse_and_profile`` reads
the file chunk by chunk (never whole) into row and column counts, types and per-column statistics
that are JSON-ready. Every refusal is an ``IngestError`` with a code, an HTTP status and a message
that names the line.
"""

from __future__ import annotations

import codecs
import csv
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

PathLike = str | os.PathLike[str]

SNIFF_BYTES = 64 * 1024
SNIFFER_CHARS = 8 * 1024  # csv.Sniffer takes ~1 s on 64 KB and ~30 ms on 8 KB
DELIMITERS = (",", ";", "\t")
UNIQUE_CAP = 10_000
COUNT_BUDGET = 500_000  # distinct values tracked over all columns: wide files count fewer per column
TOP_N = 5
CELL_BUDGET = 1_000_000  # cells per chunk: wide files get fewer rows per chunk, not more memory
READ_BLOCK = 1 << 20
CONTROL_RATIO = 0.01
MAX_COLUMNS = 10_000  # refused before anything is stored; wider tables are not something to train on here
MAX_COLUMN_NAME = 255  # characters: what a pipeline's target column can hold (storage.models.Pipeline.target)

# 400: there is no usable table in the file; 413: too big; 415: not CSV text or not a supported
# encoding; 422: a table, but its header breaks the dataset rules (every column named, names unique,
# printable and at most MAX_COLUMN_NAME characters, at most MAX_COLUMNS columns).
STATUS = {
    "empty_file": 400,
    "header_only": 400,
    "ragged_rows": 400,
    "parse_error": 400,
    "too_large": 413,
    "not_csv": 415,
    "bad_encoding": 415,
    "no_columns": 422,
    "empty_column_name": 422,
    "duplicate_columns": 422,
    "bad_column_name": 422,
    "too_many_columns": 422,
}

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one: export the sheet as CSV)"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (an Excel .xls workbook?: export the sheet as CSV)"),
    (b"\x1f\x8b", "gzip-compressed (decompress it first)"),
    (b"BZh", "bzip2-compressed (decompress it first)"),
    (b"\xfd7zXZ\x00", "xz-compressed (decompress it first)"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 32), 127])
# Characters a column name must not hold: control characters (NUL, escapes, line breaks) and the
# bidirectional embeddings, overrides and isolates that make a name read differently than it is.
_BIDI_CONTROLS = {*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}
_NAME_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"
# Windows-1252 with its five unassigned bytes read as Latin-1, as browsers do: it never fails.
_CP1252_TABLE = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))
_UTF8 = {"utf-8", "utf8", "utf-8-sig"}

_EXPECTED_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_NUMBER = re.compile(r"[-+]?\d+(?:([.,])\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_NUMERIC = ("int64", "float64")


class IngestError(Exception):
    """A file the upload refuses; ``code`` and ``status`` go into the API error, the message to a person."""

    def __init__(self, code: str, message: str, *, status: int | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.status = status or STATUS[code]
        self.message = message
        self.details = details or {}


@dataclass(frozen=True)
class Dialect:
    """How to read the file: ``encoding`` is a Python codec name, ``decimal`` the decimal mark of numbers."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quotechar: str = '"'
    decimal: str = "."
    # Column names to use instead of the first line, which is then skipped: the CSVs bundled with
    # scikit-learn start with "n_samples,n_features,class names..." rather than a header.
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Profile:
    """What an upload holds, all JSON-ready; ``dialect`` is what was read, after any encoding fallback.

    ``columns``: ``{name, dtype, missing}`` in file order, dtype one of int64, float64, bool, datetime64,
    string (the type of the values present; missing ones are counted apart). ``profile[name]``: numbers
    ``{count, mean, std, min, max}``; text and booleans ``{count, unique, top, top_exact}`` with ``unique``
    an int or ``">10000"`` and ``top`` up to five ``{value, count}``; dates ``{count, min, max}`` in ISO 8601.
    """

    rows: int
    columns: list[dict[str, Any]]
    profile: dict[str, dict[str, Any]]
    dialect: Dialect
    bytes_read: int


# -- upload ----------------------------------------------------------------------------------------


# -- sniffing --------------------------------------------------------------------------------------


def sniff(path: PathLike) -> Dialect:
    """Guess encoding, delimiter and decimal mark from the first 64 KB; refuse what is not CSV text."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
        complete = len(head) < SNIFF_BYTES or not handle.read(1)
    if not head:
        raise IngestError("empty_file", "the file is empty (0 bytes)")
    _refuse_binary(head)
    encoding, text = _guess_encoding(head, complete)
    if complete and not text.strip():
        raise IngestError("empty_file", "the file holds only blank lines or spaces: there is no header and no data")
    if not complete:
        text = text[: text.rfind("\n") + 1] or text
    delimiter, records = _guess_delimiter(text, complete)
    return Dialect(
        encoding=encoding,
        delimiter=delimiter,
        decimal=_guess_decimal(records, delimiter),
        names=_sklearn_names(records),
    )


def _sklearn_names(records: list[list[str]]) -> tuple[str, ...] | None:
    """Names for scikit-learn's bundled layout: first line ``n_samples,n_features,labels...``, then
    rows of ``n_features`` values and the target. None for any other file."""
    if len(records) < 2 or len(records[0]) < 2:
        return None
    first = [field.strip() for field in records[0]]
    if not (first[0].isdigit() and first[1].isdigit()) or any(_is_number(f) for f in first[2:]):
        return None
    features = int(first[1])
    if features < 1 or any(len(r) != features + 1 for r in records[1:]):
        return None
    if not all(_is_number(f) for r in records[1:] for f in r):
        return None
    return (*(f"feature_{i}" for i in range(features)), "target")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _refuse_binary(head: bytes) -> None:
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise IngestError("bad_encoding", f"the file is {name} text; save it as UTF-8 CSV and upload it again")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise IngestError("not_csv", f"this is {what}, not a CSV file")
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        if line == 1 and (column := _header_nul_column(head, nul)) is not None:
            raise IngestError(
                "bad_column_name",
                f"column {column}'s name in the header holds a NUL character (at byte {nul:,}); "
                "column names must be printable text: remove it and upload again",
                details={"column": column, "byte": nul},
            )
        raise IngestError(
            "not_csv",
            f"line {line} holds a NUL byte (at byte {nul:,}): this is a binary file, not CSV text",
            details={"line": line, "byte": nul},
        )
    controls = len(head.translate(None, _NOT_CONTROL))
    if controls > CONTROL_RATIO * len(head):
        raise IngestError(
            "not_csv",
            f"{controls} of the first {len(head):,} bytes are control characters: this is a binary file, not CSV text",
        )


def _header_nul_column(head: bytes, nul: int) -> int | None:
    """The column whose header name holds the NUL at ``nul``, when the file is otherwise text.

    Random or binary data has NULs and other control bytes everywhere; a text file with a stray NUL
    only in its header line is a bad column name, and saying which helps more than "binary file".
    """
    end = head.find(b"\n")
    header = head[: end if end >= 0 else len(head)]
    rest = head[len(header) :]
    others = len(head.translate(None, _NOT_CONTROL)) - head.count(b"\x00")
    if b"\x00" in rest or others > CONTROL_RATIO * len(head):
        return None
    delimiter = max(DELIMITERS, key=lambda d: header.count(d.encode()))
    before = header[:nul].decode("utf-8", errors="replace")
    try:
        fields = next(csv.reader([before], delimiter=delimiter), [""])
    except csv.Error:  # a lone \r outside quotes ("\r \x00"): no header to point into
        return None
    return max(1, len(fields))


def _guess_encoding(head: bytes, complete: bool) -> tuple[str, str]:
    """UTF-8 (with or without BOM) when the bytes decode as such, else Windows-1252 / Latin-1.

    UTF-8 text before the first byte that is not UTF-8 means mixed encodings, which no choice reads right.
    """
    if head.startswith(codecs.BOM_UTF8):
        body = head[len(codecs.BOM_UTF8) :]
        try:
            return "utf-8-sig", codecs.getincrementaldecoder("utf-8")().decode(body, complete)
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc, body, len(codecs.BOM_UTF8), 0, bom=True) from None
    try:
        # Incremental, so a character cut in two by the 64 KB boundary waits instead of failing.
        return "utf-8", codecs.getincrementaldecoder("utf-8")().decode(head, complete)
    except UnicodeDecodeError as exc:
        if not head[: exc.start].isascii():  # the rule _TextSource applies past the prefix, too
            raise _not_utf8(exc, head, 0, 0, bom=False) from None
    if any(b in head for b in _CP1252_UNDEFINED):
        return "latin-1", head.decode("latin-1")
    return "cp1252", codecs.charmap_decode(head, "strict", _CP1252_TABLE)[0]


def _guess_delimiter(text: str, complete: bool) -> tuple[str, list[list[str]]]:
    """csv.Sniffer's pick among comma, semicolon and tab, unless another splits the lines more evenly."""
    parsed = {d: _sample_records(text, d, complete) for d in DELIMITERS}
    scores = {d: _consistency(records) for d, records in parsed.items()}
    try:
        sniffed = csv.Sniffer().sniff(_lines_prefix(text, SNIFFER_CHARS), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    best = max(scores[d][:2] for d in DELIMITERS)
    if not best[0]:
        return ",", parsed[","]
    tied = [d for d in DELIMITERS if scores[d][:2] == best]
    choice = sniffed if sniffed in tied else max(tied, key=lambda d: scores[d][2])
    return choice, parsed[choice]


def _sample_records(text: str, delimiter: str, complete: bool) -> list[list[str]]:
    try:
        records = [r for r in csv.reader(text.splitlines(keepends=True), delimiter=delimiter) if r]
    except csv.Error:
        return []
    return records if complete else records[:-1]  # the last record may be cut by the sample boundary


def _consistency(records: list[list[str]]) -> tuple[bool, float, int]:
    """(splits lines at all, share of records with the usual field count, that count)."""
    if not records:
        return False, 0.0, 0
    width, hits = Counter(len(r) for r in records).most_common(1)[0]
    return width > 1, round(hits / len(records), 3), width


def _lines_prefix(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit]


def _guess_decimal(records: list[list[str]], delimiter: str) -> str:
    """A decimal comma only when the delimiter is not a comma and numbers use commas and never dots."""
    if delimiter == ",":
        return "."
    marks = Counter(m.group(1) for r in records[1:] for f in r if (m := _NUMBER.fullmatch(f.strip())) and m.group(1))
    return "," if marks[","] and not marks["."] else "."


# -- decoding --------------------------------------------------------------------------------------


class _TextSource:
    """The file decoded for pandas block by block: counts bytes, refuses NUL bytes, falls back to cp1252.

    A file whose first 64 KB are ASCII is sniffed as UTF-8; if it later shows a byte that is not
    UTF-8 and no UTF-8 character came before it, the file is Windows-1252 and reading switches to it
    in place (everything before was ASCII, which reads the same either way).
    """

    def __init__(self, path: PathLike, encoding: str):
        self._file = open(path, "rb")
        self.encoding = encoding
        self.bytes_read = 0
        if codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}:  # skipped here: no BOM in the first name
            if self._file.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
                self.bytes_read = len(codecs.BOM_UTF8)
            else:
                self._file.seek(0)
        self._newlines = 0
        self._multibyte_seen = False
        self._decoder = _decoder(encoding)

    def read(self, size: int = -1) -> str:
        data = self._file.read(size if size and size > 0 else READ_BLOCK)
        nul = data.find(b"\x00")
        if nul >= 0:
            line, byte = self._newlines + data.count(b"\n", 0, nul) + 1, self.bytes_read + nul
            raise IngestError(
                "not_csv",
                f"line {line} holds a NUL byte (at byte {byte:,}): this is a binary file, not CSV text",
                details={"line": line, "byte": byte},
            )
        pending = self._decoder.getstate()[0] if hasattr(self._decoder, "getstate") else b""
        try:
            text = self._decoder.decode(data, not data)
        except UnicodeDecodeError as exc:
            text = self._fall_back(pending, data, exc)
        if self.encoding in _UTF8 and not self._multibyte_seen and not text.isascii():
            self._multibyte_seen = True
        self.bytes_read += len(data)
        self._newlines += data.count(b"\n")
        return text

    def _fall_back(self, pending: bytes, data: bytes, exc: UnicodeDecodeError) -> str:
        buffered = pending + data  # the decoder's error positions count its held-back bytes too
        if self.encoding in {"utf-8", "utf8"} and not self._multibyte_seen and buffered[: exc.start].isascii():
            self.encoding = "cp1252"
            self._decoder = _decoder("cp1252")
            return self._decoder.decode(buffered, not data)
        raise _not_utf8(exc, buffered, self.bytes_read - len(pending), self._newlines, bom=self.encoding == "utf-8-sig")

    def lines(self) -> Iterator[str]:
        """Physical lines with their endings, for csv.reader when an error needs its line number."""
        rest = ""
        while block := self.read(READ_BLOCK):
            parts = (rest + block).split("\n")
            rest = parts.pop()
            for part in parts:
                yield part + "\n"
        if rest:
            yield rest

    def __iter__(self) -> Iterator[str]:  # pandas wants file-likes to be iterable; it only calls read()
        return self.lines()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _TextSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SingleByte:
    """A stateless decoder with the incremental-decoder call shape."""

    def __init__(self, encoding: str):
        self._table = _CP1252_TABLE if codecs.lookup(encoding).name == "cp1252" else None
        self._encoding = encoding

    def decode(self, data: bytes, final: bool = False) -> str:
        if self._table is not None:
            return codecs.charmap_decode(data, "strict", self._table)[0]
        return data.decode(self._encoding)


def _decoder(encoding: str):
    name = codecs.lookup(encoding).name
    if name in {"cp1252", "iso8859-1"}:
        return _SingleByte(encoding)
    return codecs.getincrementaldecoder("utf-8" if name == "utf-8-sig" else encoding)()


def _not_utf8(exc: UnicodeDecodeError, buffered: bytes, base: int, newlines_before: int, *, bom: bool) -> IngestError:
    byte = base + exc.start
    line = newlines_before + buffered.count(b"\n", 0, exc.start) + 1
    why = "the file starts with a UTF-8 byte-order mark" if bom else "the text before it is UTF-8"
    return IngestError(
        "bad_encoding",
        f"line {line} has a byte that is not UTF-8 (0x{buffered[exc.start]:02X} at byte {byte:,}) although {why}: "
        "the file mixes encodings; save it as UTF-8 and upload it again",
        details={"line": line, "byte": byte},
    )


# -- parsing and profiling -------------------------------------------------------------------------


def parse_and_profile(
    path: PathLike,
    dialect: Dialect | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = 50_000,
) -> Profile:
    """Profile the file chunk by chunk (``chunk_rows`` at most), so memory stays flat however big it is.

    ``progress(rows_parsed, bytes_read)`` runs after each chunk; an exception it raises stops the parse.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    dialect = dialect or sniff(path)
    names = _header(path, dialect)
    cap = max(100, min(UNIQUE_CAP, COUNT_BUDGET // len(names)))
    columns = [_Column(name, cap) for name in names]
    rows = 0
    with _TextSource(path, dialect.encoding) as source:
        try:
            with pd.read_csv(
                source,
                **_options(dialect),
                **({"header": None, "names": list(dialect.names), "skiprows": 1} if dialect.names else {"header": 0}),
                chunksize=max(1, min(chunk_rows, CELL_BUDGET // len(names))),
                low_memory=False,
                dtype_backend="numpy_nullable",
            ) as reader:
                for chunk in reader:
                    if not isinstance(chunk.index, pd.RangeIndex) or len(chunk.columns) != len(names):
                        # pandas turns surplus leading fields of the first row into an index, silently
                        raise _ragged(path, dialect, len(names), None)
                    _profile_chunk(columns, chunk)
                    rows += len(chunk)
                    if progress is not None:
                        progress(rows, source.bytes_read)
        except pd.errors.ParserError as exc:
            raise _parser_error(exc, path, dialect) from None
        bytes_read, encoding = source.bytes_read, source.encoding
    if rows == 0:
        raise IngestError(
            "header_only",
            f"the file has a header ({len(names)} columns) but no data rows",
            details={"columns": len(names)},
        )
    results = [column.result() for column in columns]
    return Profile(
        rows=rows,
        columns=[entry for entry, _ in results],
        profile={entry["name"]: stats for entry, stats in results},
        dialect=replace(dialect, encoding=encoding),
        bytes_read=bytes_read,
    )


def _options(dialect: Dialect) -> dict[str, Any]:
    return {
        "sep": dialect.delimiter,
        "quotechar": dialect.quotechar,
        "decimal": dialect.decimal,
        "engine": "c",  # the python engine is never needed: one-character delimiters, standard quoting
        "skip_blank_lines": True,
    }


def _header(path: PathLike, dialect: Dialect) -> list[str]:
    """The column names as written (pandas would rename duplicates), checked for blanks and repeats."""
    if dialect.names:
        _check_width(len(dialect.names))
        return list(dialect.names)
    with _TextSource(path, dialect.encoding) as source:
        try:
            first = pd.read_csv(source, **_options(dialect), header=None, nrows=1, dtype=str, na_filter=False)
        except pd.errors.EmptyDataError:
            raise IngestError("empty_file", "the file holds only blank lines: there is no header and no data") from None
        except pd.errors.ParserError as exc:
            raise _parser_error(exc, path, dialect) from None
    names = [str(name) for name in first.iloc[0].tolist()] if len(first) else []
    if not names:
        raise IngestError("no_columns", "the first line holds no column names")
    _check_width(len(names))
    _check_printable(names)
    blank = [i + 1 for i, name in enumerate(names) if not name.strip()]
    if blank == [len(names)] and len(names) > 1:
        raise IngestError(
            "empty_column_name",
            f"the header ends with {_shown(dialect.delimiter)}, which makes an unnamed column {len(names)}; "
            "remove the trailing delimiter or name the column",
            details={"columns": blank},
        )
    if blank:
        which = f"column {blank[0]} has" if len(blank) == 1 else f"columns {_listed(blank)} have"
        pandas_index = blank == [1] and len(names) > 1
        hint = " (pandas writes an unnamed index column first: save with index=False)" if pandas_index else ""
        raise IngestError(
            "empty_column_name",
            f"{which} no name in the header; every column needs one{hint}",
            details={"columns": blank},
        )
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i + 1)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        shown = [f"{name!r} (columns {_listed(where)})" for name, where in list(repeated.items())[:3]]
        listed = ", ".join(shown) + (f" and {len(repeated) - 3} more" if len(repeated) > 3 else "")
        looks_like_data = all(_NUMBER.fullmatch(name.strip()) for name in names)
        hint = " (the first line looks like data: is the header line missing?)" if looks_like_data else ""
        raise IngestError(
            "duplicate_columns",
            f"the header repeats column names: {listed}; every column needs a unique name{hint}",
            details={"duplicates": repeated},
        )
    return names


def _check_width(count: int) -> None:
    if count > MAX_COLUMNS:
        raise IngestError(
            "too_many_columns",
            f"the file has {count:,} columns; a dataset holds at most {MAX_COLUMNS:,}: keep the columns you need",
            details={"columns": count, "limit": MAX_COLUMNS},
        )


def _check_printable(names: list[str]) -> None:
    """Column names are shown, chosen as targets and stored as text: printable and of a bounded length."""
    for position, name in enumerate(names, start=1):
        if len(name) > MAX_COLUMN_NAME:
            raise IngestError(
                "bad_column_name",
                f"column {position}'s name is {len(name):,} characters long; at most {MAX_COLUMN_NAME} are allowed "
                "(is the first line really a header?)",
                details={"column": position, "length": len(name), "limit": MAX_COLUMN_NAME},
            )
        bad = next((c for c in name if c in _BIDI_CONTROLS or unicodedata.category(c) in _NAME_CATEGORIES), None)
        if bad is not None:
            raise IngestError(
                "bad_column_name",
                f"column {position}'s name holds a control or invisible character (U+{ord(bad):04X}); "
                "column names must be printable text: remove it and upload again",
                details={"column": position, "character": f"U+{ord(bad):04X}"},
            )


def _parser_error(exc: pd.errors.ParserError, path: PathLike, dialect: Dialect) -> IngestError:
    text = str(exc)
    if match := _EXPECTED_FIELDS.search(text):
        expected, record, saw = (int(g) for g in match.groups())
        return _ragged(path, dialect, expected, (record, saw))
    if _OPEN_QUOTE.search(text):
        line = _unclosed_quote_line(path, dialect)
        where = f" on line {line}" if line else ""
        return IngestError(
            "parse_error",
            f"the quoted field that starts{where} is never closed: a closing {dialect.quotechar} is missing, "
            "so everything after it would be one value",
            details={"reason": "unclosed_quote", "line": line},
        )
    detail = text.split("C error:", 1)[-1].strip()
    return IngestError("parse_error", f"the file could not be read as CSV: {detail}", details={"reason": detail})


def _ragged(path: PathLike, dialect: Dialect, expected: int, reported: tuple[int, int] | None) -> IngestError:
    """Name the physical line of the first row wider than the header (pandas counts records, not lines)."""
    found = None
    for i, (line, fields) in enumerate(_records(path, dialect)):
        if i and fields is not None and len(fields) > expected:
            found = i, line, fields
            break
    if found is None and reported is None:
        return IngestError("ragged_rows", f"a row has more fields than the header's {expected}")
    if found is None:
        line, count, hint = reported[0], reported[1], ""
    else:
        index, line, fields = found
        count = len(fields)
        if not any(field.strip() for field in fields[expected:]):
            hint = f" (the extra fields are empty: is there a {_shown(dialect.delimiter)} at the end of the line?)"
        elif index == 1:
            hint = " (the first line names fewer columns than the rows hold: is it really the header?)"
        else:
            hint = f"; quote values that contain {_shown(dialect.delimiter)}"
    return IngestError(
        "ragged_rows",
        f"line {line} has {count} fields, the header has {expected}{hint}",
        details={"line": line, "fields": count, "expected": expected},
    )


def _unclosed_quote_line(path: PathLike, dialect: Dialect) -> int | None:
    last = None
    for line, _fields in _records(path, dialect):
        last = line
    return last


def _records(path: PathLike, dialect: Dialect) -> Iterator[tuple[int, list[str] | None]]:
    """Records with the line each starts on, skipping blank lines as pandas does; ``None`` where csv gives up."""
    with _TextSource(path, dialect.encoding) as source:
        reader = csv.reader(source.lines(), delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:  # e.g. a field past csv's size limit: an unclosed quote swallowing the file
                yield start, None
                return
            if fields and (len(fields) > 1 or fields[0].strip()):
                yield start, fields


def _profile_chunk(columns: list[_Column], chunk: pd.DataFrame) -> None:
    """Numeric columns leave pandas in one conversion: per-column pandas calls dominate on wide files."""
    dtypes = chunk.dtypes.tolist()
    kinds = [_kind(dtype) for dtype in dtypes]
    numeric = [i for i, kind in enumerate(kinds) if kind in _NUMERIC]
    if numeric:
        block = chunk if len(numeric) == len(kinds) else chunk.iloc[:, numeric]
        numbers = np.asfortranarray(block.to_numpy(dtype="float64", na_value=np.nan))
        signed = [j for j, i in enumerate(numeric) if pd.api.types.is_signed_integer_dtype(dtypes[i])]
        # Integers again without the float64 detour, so min and max of large ids stay exact.
        ints = block if len(signed) == len(numeric) else block.iloc[:, signed]
        exact = np.asfortranarray(ints.to_numpy(dtype="int64", na_value=0)) if signed else None
        position = {j: k for k, j in enumerate(signed)}
        for j, i in enumerate(numeric):
            integers = exact[:, position[j]] if j in position else None
            columns[i].add_numbers(kinds[i], numbers[:, j], integers)
    for i, kind in enumerate(kinds):
        if kind not in _NUMERIC:
            columns[i].add(chunk.iloc[:, i])


class _Column:
    """One column's running type, missing count and statistics, merged chunk by chunk.

    Types only widen: int64 + float64 -> float64, anything else mixed -> string; a chunk with no
    values is no evidence. Mean and variance merge exactly (Chan et al.), so the chunk size does not
    change them. Value counts stay bounded: past ``cap`` distinct values (UNIQUE_CAP, less on wide
    files) a Misra-Gries summary keeps the frequent ones (counts then undercount by at most
    rows / cap) and ``top_exact`` is false.
    Numbers and dates are counted too, as long as they are few, in case the column turns to text later.
    """

    def __init__(self, name: str, cap: int = UNIQUE_CAP):
        self.name = name
        self.cap = cap
        self.kind: str | None = None
        self.missing = 0
        self.present = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.low: Any = None
        self.high: Any = None
        self.counts: Counter[Any] = Counter()
        self.numbers: tuple[np.ndarray, np.ndarray] | None = None  # distinct numbers and their counts
        self.counting = True
        self.saturated = False

    def add_numbers(self, kind: str, numbers: np.ndarray, integers: np.ndarray | None) -> None:
        """A numeric chunk as float64 with NaN where missing; ``integers`` is the same column unrounded, if integer."""
        absent = np.isnan(numbers)
        missing = int(absent.sum())
        self.missing += missing
        if missing == len(numbers):
            return
        if missing:
            numbers = numbers[~absent]
            integers = integers[~absent] if integers is not None else None
        self.present += len(numbers)
        self.kind = _wider(self.kind, kind)
        exact = integers if integers is not None else numbers
        if self.kind in _NUMERIC:
            self._add_moments(numbers, exact)
        if self.kind == "string":
            self._as_text()
            values, tallies = np.unique(exact, return_counts=True)
            self._merge_counts(Counter(dict(zip(map(str, values.tolist()), tallies.tolist()))))
        elif self.counting:
            self._count_numbers(exact)

    def add(self, values: pd.Series) -> None:
        """A chunk of text, booleans or anything else not numeric."""
        absent = values.isna()
        missing = int(absent.sum())
        self.missing += missing
        if missing == len(values):
            return
        if missing:
            values = values[~absent]
        self.present += len(values)
        kind = _kind(values.dtype)
        if kind == "string" and self.kind in (None, "datetime64"):
            kind = self._as_datetime(values)
        self.kind = _wider(self.kind, kind)
        if self.kind == "string":
            self._as_text()
        if not self.counting:
            return
        if isinstance(values.dtype, pd.StringDtype):
            self._merge_counts(Counter(values.to_numpy(dtype=object)))  # C-level; value_counts is ~3x slower
        else:
            tallies = values.value_counts(sort=False)
            self._merge_counts(Counter(dict(zip(map(str, tallies.index.tolist()), tallies.tolist()))))

    def _add_moments(self, numbers: np.ndarray, exact: np.ndarray) -> None:
        n = len(numbers)
        with np.errstate(invalid="ignore", over="ignore"):  # infinities: reported as null, not warned about
            mean = float(numbers.mean())
            m2 = float(np.square(numbers - mean).sum())
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        low, high = exact.min().item(), exact.max().item()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _as_datetime(self, values: pd.Series) -> str:
        """ISO 8601 dates only (``01/02/2020`` is ambiguous and stays text); the regex gate is a cheap sample."""
        if not all(_ISO_DATE.fullmatch(value) for value in values.iloc[:20]):
            return "string"
        try:
            stamps = pd.to_datetime(values, format="ISO8601")
            low, high = stamps.min(), stamps.max()
            if self.kind == "datetime64":
                low, high = min(self.low, low), max(self.high, high)
        except (ValueError, TypeError, OverflowError):  # not a date, impossible dates, mixed time zones
            return "string"
        self.low, self.high = low, high
        return "datetime64"

    def _count_numbers(self, exact: np.ndarray) -> None:
        """In numpy, not a Counter: a wide file of small integers merges hundreds of these per chunk."""
        values, tallies = np.unique(exact, return_counts=True)
        if self.numbers is not None:
            values, inverse = np.unique(np.concatenate([self.numbers[0], values]), return_inverse=True)
            tallies = np.bincount(inverse, weights=np.concatenate([self.numbers[1], tallies])).astype(np.int64)
        if len(values) > self.cap:
            self._stop_counting()
            return
        self.numbers = values, tallies

    def _as_text(self) -> None:
        """The column turned to text: the numbers counted so far join the counts as strings."""
        if not self.counting:  # stays ``saturated``: what was seen before is no longer known
            self.counting, self.counts = True, Counter()
        if self.numbers is not None:
            values, tallies = self.numbers
            self.numbers = None
            self._merge_counts(Counter(dict(zip(map(str, values.tolist()), tallies.tolist()))))

    def _merge_counts(self, chunk: Counter[Any]) -> None:
        if len(chunk) > self.cap:
            self.saturated = True
            chunk = _prune(chunk, self.cap)
        self.counts.update(chunk)
        if len(self.counts) > self.cap:
            self.saturated = True
            if self.kind != "string":
                self._stop_counting()
                return
            self.counts = _prune(self.counts, self.cap)

    def _stop_counting(self) -> None:
        self.counting, self.counts, self.numbers, self.saturated = False, Counter(), None, True

    def result(self) -> tuple[dict[str, Any], dict[str, Any]]:
        dtype = self.kind or "float64"  # no values at all: what pandas makes of an empty column
        entry = {"name": self.name, "dtype": dtype, "missing": self.missing}
        if dtype in _NUMERIC:
            std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan
            stats = {
                "count": self.n,
                "mean": _finite(self.mean) if self.n else None,
                "std": _finite(std),
                "min": _bound(self.low, dtype),
                "max": _bound(self.high, dtype),
            }
        elif dtype == "datetime64":
            stats = {"count": self.present, "min": self.low.isoformat(), "max": self.high.isoformat()}
        else:
            top = sorted(self.counts.items(), key=lambda item: (-item[1], str(item[0])))[:TOP_N]
            stats = {
                "count": self.present,
                "unique": f">{self.cap}" if self.saturated else len(self.counts),
                "top": [{"value": _label(value, dtype), "count": int(count)} for value, count in top],
                "top_exact": not self.saturated,
            }
        return entry, stats


def _prune(counts: Counter[Any], cap: int) -> Counter[Any]:
    """Misra-Gries: subtract the (cap+1)-th largest count from all, keeping at most ``cap`` values."""
    values = np.fromiter(counts.keys(), dtype=object, count=len(counts))
    tallies = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    cut = len(tallies) - cap - 1
    floor = np.partition(tallies, cut)[cut]
    keep = tallies > floor
    return Counter(dict(zip(values[keep].tolist(), (tallies[keep] - floor).tolist())))


def _kind(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int64"
    if pd.api.types.is_float_dtype(dtype):
        return "float64"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime64"
    return "string"


def _wider(old: str | None, new: str) -> str:
    if old is None or old == new:
        return new
    if old in _NUMERIC and new in _NUMERIC:
        return "float64"
    return "string"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _bound(value: Any, dtype: str) -> int | float | None:
    if value is None:
        return None
    return int(value) if dtype == "int64" else _finite(float(value))


def _label(value: Any, dtype: str) -> Any:
    # No NUL reaches here (the reader refuses it), and none may: PostgreSQL text and JSON cannot hold it.
    return value == "True" if dtype == "bool" else str(value).replace("\x00", "\ufffd")


def _shown(delimiter: str) -> str:
    return "a tab" if delimiter == "\t" else f"'{delimiter}'"


def _listed(numbers: list[int], limit: int = 5) -> str:
    if len(numbers) > limit:
        return ", ".join(map(str, numbers[:limit])) + f" and {len(numbers) - limit} more"
    return ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
