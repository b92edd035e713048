"""Checks shared by every service that takes input: a body's fields, and names people will read."""

from __future__ import annotations

import unicodedata
from typing import Any

from services.errors import Invalid

# Control characters (NUL, newlines, escapes), format characters (bidi overrides such as U+202E that
# make "exe.txt" read as "txt.exe", zero-width joiners), line/paragraph separators and lone surrogates.
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def check_fields(body: Any, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", code="invalid_json", status=400)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}", code="unknown_fields", status=400,
                      details={"fields": unknown, "allowed": sorted(allowed)})
    missing = sorted(required - set(body))
    if missing:
        raise Invalid(f"missing field(s): {', '.join(missing)}", details={f: "required" for f in missing})
    return body


def name_problem(value: Any, max_length: int = 100) -> str | None:
    """Why ``value`` cannot be a name shown to people, or None when it can."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        return f"a name of 1 to {max_length} characters is required"
    bad = next((c for c in value if unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        return f"a name cannot contain control or invisible characters (found U+{ord(bad):04X})"
    return None
