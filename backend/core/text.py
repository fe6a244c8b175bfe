"""The strings the API takes, checked before anything reaches SQL.

PostgreSQL cannot store a NUL in text and parses an ltree itself, so a string that reaches
it unchecked answers 500 where the client deserves 422. Every string a request carries (a
body field, a list item, a query, path or header parameter) has one of these types, a
stricter pattern of its own, an enum or a parsed format (uuid, date-time);
`tests/test_contract_strings.py` walks the contract to keep it so.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

# Anything but NUL.
NO_NUL_PATTERN = r"^[^\x00]*$"

Text = Annotated[str, StringConstraints(strip_whitespace=True, pattern=NO_NUL_PATTERN)]
"""What a person typed (a description, a name, a note): trimmed, without NUL."""

Line = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]*$")]
"""One line a person typed (a name, a reason): trimmed, without control characters."""

Verbatim = Annotated[str, StringConstraints(pattern=NO_NUL_PATTERN)]
"""A string used exactly as sent (a code, a token, a key, a cursor): without NUL. Its own
shape, if any, is the service's to check, with the error that names it."""

# Region codes are ltree paths: labels of lower-case ASCII letters, digits and underscore
# (a subset of what ltree accepts), joined by dots, e.g. `gz.tianhe.shipai`: at most 16
# labels of at most 64 characters.
REGION_LABEL_PATTERN = r"^[a-z0-9_]{1,64}$"
REGION_CODE_PATTERN = r"^[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64}){0,15}$"
REGION_CODE_CHARS = 16 * 64 + 15

RegionLabel = Annotated[str, StringConstraints(pattern=REGION_LABEL_PATTERN)]
"""One label of a region code: the last part of a new region's code."""

RegionCode = Annotated[
    str, StringConstraints(pattern=REGION_CODE_PATTERN, max_length=REGION_CODE_CHARS)
]
"""A region's code, its full path from the city down: `gz.tianhe.shipai`."""

_REGION_CODE = re.compile(REGION_CODE_PATTERN)


def is_region_code(value: str) -> bool:
    """Whether `value` is a region code (for codes that arrive inside a file, not a field)."""
    return _REGION_CODE.fullmatch(value) is not None


def is_text(value: str) -> bool:
    """Whether `value` can be stored as text (for strings inside a file, not a field)."""
    return "\x00" not in value
