"""Parse raw CSV lines against the header and the dataset schema, and format curated CSV lines.

Everything here is plain Python (no Beam), so each rule is testable on its own. Values are checked with
:meth:`mlkit.schema.Column.parse`, the same rules training and serving apply, so a row accepted here is
a row the model and the endpoint accept too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mlkit.schema import DatasetSchema

#: ``Rejection.kind`` of a row that broke a rule, and of a later copy of an id already seen.
INVALID: Final = "invalid"
DUPLICATE: Final = "duplicate"

#: Short reason classes counted in the job summary (``rejections_by_reason``).
BLANK_LINE: Final = "blank line"
INVALID_ENCODING: Final = "invalid encoding"
MALFORMED_CSV: Final = "malformed csv"
WRONG_FIELD_COUNT: Final = "wrong field count"
DUPLICATE_ID: Final = "duplicate id"
INVALID_VALUE: Final = "invalid value"

# Column.parse reports problems only as message text, so the summary's reason class is recovered from
# stable phrases of those messages. An unknown phrase still counts, as INVALID_VALUE.
_VALUE_PROBLEMS: Final = (
    ("missing value", "missing value"),
    ("unknown category", "unknown category"),
    ("must be 0 or 1", "not binary"),
    ("must be a whole number", "not a whole number"),
    ("must be a finite number", "not a finite number"),
    ("must be a number", "not a number"),
    ("below the plausible minimum", "below minimum"),
    ("above the plausible maximum", "above maximum"),
)

_BOM: Final = "\ufeff"


class HeaderError(ValueError):
    """The input's header line does not match the dataset schema; the job cannot run."""


@dataclass(frozen=True)
class Record:
    """A row that passed every check.

    Attributes:
        line: 1-based line number in the input file (the header is line 1).
        raw: The line as read, without its line ending.
        values: Parsed value of every schema column, keyed by column name.
    """

    line: int
    raw: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Rejection:
    """A row that was not accepted, and why.

    Attributes:
        line: 1-based line number in the input file (the header is line 1).
        reason: Human-readable reason naming the column(s) and the problem(s).
        raw: The line as read, without its line ending.
        kind: :data:`INVALID` or :data:`DUPLICATE`.
        reason_class: Short class of the (first) problem, for counting, e.g. ``"below minimum"``.
    """

    line: int
    reason: str
    raw: str
    kind: str
    reason_class: str

    def to_json(self) -> dict[str, Any]:
        """Return the object written to ``rejected/*.jsonl``: ``line``, ``reason``, ``raw`` and ``kind``."""
        return {"line": self.line, "reason": self.reason, "raw": self.raw, "kind": self.kind}


def parse_header(data: str | bytes, schema: DatasetSchema) -> tuple[str, ...]:
    """Parse the header line and check that it names exactly the schema's columns.

    The column order may differ from the schema's; rows are read by name. A UTF-8 byte order mark and a
    trailing CR/LF are removed, and whitespace around names is ignored.

    Args:
        data: The first line of the input, as bytes or text.
        schema: The dataset schema.

    Returns:
        The column names in header order.

    Raises:
        HeaderError: If the header is empty, is not valid UTF-8 or CSV, repeats a column, lacks a schema
            column or has a column the schema does not define.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise HeaderError(f"header line is not valid UTF-8: {error}") from None
    text = text.removeprefix(_BOM).rstrip("\r\n")
    if not text.strip():
        raise HeaderError("input has no header line (the first line is empty)")
    try:
        names = tuple(name.strip() for name in _split_csv(text))
    except csv.Error as error:
        raise HeaderError(f"header line is not valid CSV: {error}") from None
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HeaderError(f"header repeats column(s) {_quoted(repeated)}")
    missing = [name for name in schema.column_names if name not in names]
    extra = [name for name in names if name not in schema.column_names]
    problems = []
    if missing:
        problems.append(f"lacks schema column(s) {_quoted(missing)}")
    if extra:
        problems.append(f"has column(s) not in schema {schema.name!r}: {_quoted(extra)}")
    if problems:
        raise HeaderError("header " + " and ".join(problems))
    return names


def parse_line(line: int, data: str | bytes, header: Sequence[str], schema: DatasetSchema) -> Record | Rejection:
    """Parse one data line and check every value against the schema.

    Never raises for bad data: every problem becomes a :class:`Rejection` naming it. A row with several
    bad values lists them all, so one look at the rejected output is enough to fix the row.

    Args:
        line: 1-based line number of ``data`` in the input (the header is line 1).
        data: The line as bytes or text; a trailing CR/LF is ignored.
        header: Column names in header order, from :func:`parse_header`.
        schema: The dataset schema.

    Returns:
        A :class:`Record` with every schema column parsed, or a :class:`Rejection` (kind ``invalid``).
    """
    if isinstance(data, bytes):
        stripped = data.rstrip(b"\r\n")
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as error:
            raw = stripped.decode("utf-8", errors="replace")
            return _invalid(line, raw, f"line is not valid UTF-8: {error}", INVALID_ENCODING)
    else:
        text = data.rstrip("\r\n")
    if not text.strip():
        return _invalid(line, text, BLANK_LINE, BLANK_LINE)
    try:
        fields = _split_csv(text)
    except csv.Error as error:
        return _invalid(line, text, f"malformed CSV: {error}", MALFORMED_CSV)
    if len(fields) != len(header):
        return _invalid(line, text, f"expected {len(header)} fields, found {len(fields)}", WRONG_FIELD_COUNT)
    by_name = dict(zip(header, fields, strict=True))
    values: dict[str, Any] = {}
    problems: list[str] = []
    for column in schema.columns:
        try:
            values[column.name] = column.parse(by_name[column.name])
        except ValueError as error:
            problems.append(str(error))
    if problems:
        return _invalid(line, text, "; ".join(problems), _value_problem_class(problems[0]))
    return Record(line=line, raw=text, values=values)


def duplicate(record: Record, first: Record, id_column: str) -> Rejection:
    """Return the rejection of ``record``, a later copy of the id of ``first``.

    Args:
        record: The row to reject.
        first: The kept row with the same id (the earliest line).
        id_column: Name of the schema's id column, used in the reason.
    """
    reason = f"duplicate {id_column} {record.values[id_column]} (first seen on line {first.line})"
    return Rejection(line=record.line, reason=reason, raw=record.raw, kind=DUPLICATE, reason_class=DUPLICATE_ID)


def format_csv_line(values: Sequence[Any]) -> str:
    """Format values as one CSV line (no line ending), quoting only where needed.

    Floats holding whole numbers are written without ``.0`` and other floats in their shortest exact
    form, so written values read back to the same numbers.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([_format_value(value) for value in values])
    return buffer.getvalue()


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _split_csv(text: str) -> list[str]:
    # strict: an unterminated quote is an error rather than silently swallowing the rest of the line.
    return next(csv.reader([text], strict=True))


def _invalid(line: int, raw: str, reason: str, reason_class: str) -> Rejection:
    return Rejection(line=line, reason=reason, raw=raw, kind=INVALID, reason_class=reason_class)


def _value_problem_class(message: str) -> str:
    for phrase, reason_class in _VALUE_PROBLEMS:
        if phrase in message:
            return reason_class
    return INVALID_VALUE


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)
