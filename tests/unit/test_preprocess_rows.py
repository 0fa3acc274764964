"""Row parsing of the preprocessing job: one accepted record or one rejection with its reason per line."""

from __future__ import annotations

import csv

import pytest

from glue_jobs.preprocess import rows
from glue_jobs.preprocess.rows import HeaderError, Record, Rejection, format_csv_line, parse_header, parse_line
from mlkit.schema import DatasetSchema

pytestmark = pytest.mark.unit

HEADER = (
    "UDI,Product ID,Type,Air temperature [K],Process temperature [K],Rotational speed [rpm],"
    "Torque [Nm],Tool wear [min],Machine failure,TWF,HDF,PWF,OSF,RNF"
)
GOOD = "1,M14860,M,298.1,308.6,1551,42.8,0,0,0,0,0,0,0"


@pytest.fixture(scope="module")
def header(schema: DatasetSchema) -> tuple[str, ...]:
    return parse_header(HEADER, schema)


def _with(field: str, value: str) -> str:
    """GOOD with one field replaced."""
    values = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    values[field] = value
    return ",".join(values.values())


def _rejected(parsed: Record | Rejection) -> Rejection:
    assert isinstance(parsed, Rejection), parsed
    assert parsed.kind == rows.INVALID
    return parsed


# ---- header -------------------------------------------------------------------------------------


def test_header_of_schema_columns_is_accepted(schema: DatasetSchema) -> None:
    assert parse_header(HEADER, schema) == tuple(schema.column_names)


def test_header_tolerates_bom_crlf_whitespace_and_reordering(schema: DatasetSchema) -> None:
    names = HEADER.split(",")
    reordered = ",".join(f" {name} " for name in reversed(names))
    assert parse_header(("\ufeff" + reordered + "\r\n").encode(), schema) == tuple(reversed(names))


def test_header_missing_columns_names_them(schema: DatasetSchema) -> None:
    without = ",".join(n for n in HEADER.split(",") if n not in ("Torque [Nm]", "RNF"))
    with pytest.raises(HeaderError, match=r"lacks schema column\(s\) 'Torque \[Nm\]', 'RNF'"):
        parse_header(without, schema)


def test_header_extra_column_names_it(schema: DatasetSchema) -> None:
    with pytest.raises(HeaderError, match=r"not in schema 'ai4i2020': 'Humidity'"):
        parse_header(HEADER + ",Humidity", schema)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "no header line"),
        ("\r\n", "no header line"),
        (HEADER + ",UDI", "repeats column"),
        (b"\xff\xfe" + HEADER.encode(), "not valid UTF-8"),
        ('UDI,"Product ID', "not valid CSV"),
    ],
)
def test_bad_headers_are_refused(schema: DatasetSchema, line: str | bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        parse_header(line, schema)


# ---- rows ---------------------------------------------------------------------------------------


def test_good_line_parses_every_column(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    parsed = parse_line(2, GOOD + "\r\n", header, schema)
    assert parsed == Record(
        line=2,
        raw=GOOD,
        values={
            "UDI": 1,
            "Product ID": "M14860",
            "Type": "M",
            "Air temperature [K]": 298.1,
            "Process temperature [K]": 308.6,
            "Rotational speed [rpm]": 1551.0,
            "Torque [Nm]": 42.8,
            "Tool wear [min]": 0.0,
            "Machine failure": 0,
            "TWF": 0,
            "HDF": 0,
            "PWF": 0,
            "OSF": 0,
            "RNF": 0,
        },
    )


def test_bytes_and_text_parse_alike(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    assert parse_line(7, GOOD.encode(), header, schema) == parse_line(7, GOOD, header, schema)


def test_quoted_field_with_comma_is_one_field(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    parsed = parse_line(3, _with("Product ID", '"M14,860"'), header, schema)
    assert isinstance(parsed, Record)
    assert parsed.values["Product ID"] == "M14,860"


def test_columns_are_read_by_header_name_not_position(schema: DatasetSchema) -> None:
    names, values = HEADER.split(","), GOOD.split(",")
    header = parse_header(",".join(reversed(names)), schema)
    reordered = parse_line(2, ",".join(reversed(values)), header, schema)
    in_order = parse_line(2, GOOD, tuple(names), schema)
    assert isinstance(reordered, Record) and isinstance(in_order, Record)
    assert reordered.values == in_order.values


@pytest.mark.parametrize(
    ("line", "reason", "reason_class"),
    [
        ("", "blank line", rows.BLANK_LINE),
        ("   \r", "blank line", rows.BLANK_LINE),
        ("1,M14860,M,298.1,308.6,1551", "expected 14 fields, found 6", rows.WRONG_FIELD_COUNT),
        (GOOD + ",surplus", "expected 14 fields, found 15", rows.WRONG_FIELD_COUNT),
        ('1,"M14860,M,298.1', "malformed CSV", rows.MALFORMED_CSV),
        (_with("Air temperature [K]", "warm"), "'Air temperature [K]' must be a number, got 'warm'", "not a number"),
        (_with("Torque [Nm]", "-5.5"), "'Torque [Nm]'=-5.5 is below the plausible minimum 0", "below minimum"),
        (_with("Rotational speed [rpm]", "99999"), "is above the plausible maximum 10000", "above maximum"),
        (_with("Type", ""), "missing value for 'Type'", "missing value"),
        (_with("Type", "X"), "unknown category 'X' for 'Type' (allowed: L, M, H)", "unknown category"),
        (_with("Machine failure", "2"), "'Machine failure' must be 0 or 1, got '2'", "not binary"),
        (_with("UDI", "4.5"), "'UDI' must be a whole number, got '4.5'", "not a whole number"),
        (_with("Tool wear [min]", "nan"), "'Tool wear [min]' must be a finite number", "not a finite number"),
    ],
)
def test_each_bad_row_class_is_rejected_with_its_reason(
    schema: DatasetSchema, header: tuple[str, ...], line: str, reason: str, reason_class: str
) -> None:
    rejection = _rejected(parse_line(5, line, header, schema))
    assert reason in rejection.reason
    assert rejection.reason_class == reason_class
    assert rejection.line == 5
    assert rejection.raw == line.rstrip("\r\n")


def test_every_problem_of_a_row_is_listed(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    line = _with("Torque [Nm]", "-1").replace(",M,", ",,")
    rejection = _rejected(parse_line(9, line, header, schema))
    assert rejection.reason == "missing value for 'Type'; 'Torque [Nm]'=-1 is below the plausible minimum 0"
    assert rejection.reason_class == "missing value"  # the first problem names the class


def test_undecodable_bytes_reject_the_line_only(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    rejection = _rejected(parse_line(4, GOOD.replace("M14860", "M\xe9").encode("latin-1"), header, schema))
    assert rejection.reason_class == rows.INVALID_ENCODING
    assert rejection.raw.startswith("1,M\ufffd,")


def test_rejection_json_has_exactly_the_contract_keys(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    rejection = _rejected(parse_line(12, "", header, schema))
    assert rejection.to_json() == {"line": 12, "reason": "blank line", "raw": "", "kind": "invalid"}


def test_duplicate_names_the_id_and_first_line(schema: DatasetSchema, header: tuple[str, ...]) -> None:
    first = parse_line(43, _with("UDI", "42"), header, schema)
    later = parse_line(900, _with("UDI", "42"), header, schema)
    assert isinstance(first, Record) and isinstance(later, Record)
    rejection = rows.duplicate(later, first, schema.id_column)
    assert rejection.to_json() == {
        "line": 900,
        "reason": "duplicate UDI 42 (first seen on line 43)",
        "raw": later.raw,
        "kind": "duplicate",
    }


def test_format_csv_line_quotes_only_where_needed_and_keeps_floats_exact() -> None:
    line = format_csv_line([1, "a,b", 'say "hi"', 1551.0, 0.1 + 0.2, 298.1])
    assert line == '1,"a,b","say ""hi""",1551,0.30000000000000004,298.1'
    assert next(csv.reader([line])) == ["1", "a,b", 'say "hi"', "1551", "0.30000000000000004", "298.1"]
    assert float("0.30000000000000004") == 0.1 + 0.2
