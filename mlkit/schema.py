"""Dataset schema: the one place that knows column names, types, ranges and derived features.

The schema is configuration (a JSON file, see ``mlkit/datasets/ai4i2020.json``), so the kit is not
hard-wired to one dataset. This module is deliberately stdlib-only: it is shipped unchanged into the
Glue job, the SageMaker training container and the TF Serving container (under ``code/lib``), so the
preprocessing, training and serving code all validate values with the same rules.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATASET = "ai4i2020"

COLUMN_KINDS = ("integer", "numeric", "categorical", "string", "binary")
FEATURE_KINDS = ("integer", "numeric", "categorical")
SPLITS = ("train", "validation", "test")

#: Derived-feature operations and the parameters each requires besides ``args``.
#: ``arity`` is the number of ``args``. Every op yields a float; indicator ops yield 0.0 or 1.0.
DERIVED_OPS: dict[str, tuple[int, tuple[str, ...]]] = {
    "subtract": (2, ()),
    "multiply": (2, ()),
    "divide": (2, ()),
    "lookup": (1, ("table",)),
    "less_than": (1, ("value",)),
    "greater_than": (1, ("value",)),
    "between": (1, ("low", "high")),
    "outside": (1, ("low", "high")),
}


class SchemaError(ValueError):
    """The schema configuration itself is invalid."""


def feature_key(name: str) -> str:
    """Return the identifier used for a column inside models and requests-as-tensors.

    ``"Air temperature [K]"`` becomes ``"air_temperature_k"``: SavedModel signature inputs must be
    plain identifiers, while users keep sending the raw column names.
    """
    key = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if not key:
        raise SchemaError(f"column name {name!r} has no letters or digits to build a key from")
    if key[0].isdigit():
        key = f"f_{key}"
    return key


@dataclass(frozen=True)
class Column:
    """One raw column of the dataset.

    Attributes:
        name: The column name exactly as in the CSV header and in JSON requests.
        kind: One of ``integer``, ``numeric``, ``categorical``, ``string``, ``binary``.
        minimum: Smallest physically plausible value (numeric kinds), inclusive.
        maximum: Largest physically plausible value (numeric kinds), inclusive.
        categories: Allowed values (categorical kind), in a fixed order.
        feature: Whether the model receives this column as an input.
    """

    name: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    feature: bool = False

    @property
    def key(self) -> str:
        """Identifier of this column inside the model (see :func:`feature_key`)."""
        return feature_key(self.name)

    def parse(self, raw: Any) -> float | int | str:
        """Convert one raw value (CSV text or a JSON value) and check it.

        Args:
            raw: The value as read; ``None`` or a blank string means missing.

        Returns:
            ``int`` for integer and binary columns, ``float`` for numeric ones, ``str`` otherwise.

        Raises:
            ValueError: With a message naming the column and the problem.
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise ValueError(f"missing value for {self.name!r}")
        if self.kind == "string":
            return str(raw).strip()
        if self.kind == "categorical":
            text = str(raw).strip()
            if text not in self.categories:
                allowed = ", ".join(self.categories)
                raise ValueError(f"unknown category {text!r} for {self.name!r} (allowed: {allowed})")
            return text
        number = self._number(raw)
        if self.kind in ("integer", "binary"):
            if not number.is_integer():
                raise ValueError(f"{self.name!r} must be a whole number, got {raw!r}")
            if self.kind == "binary" and number not in (0.0, 1.0):
                raise ValueError(f"{self.name!r} must be 0 or 1, got {raw!r}")
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"{self.name!r}={number:g} is below the plausible minimum {self.minimum:g}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"{self.name!r}={number:g} is above the plausible maximum {self.maximum:g}")
        return int(number) if self.kind in ("integer", "binary") else number

    def _number(self, raw: Any) -> float:
        if isinstance(raw, bool):  # JSON true/false are not sensor readings
            raise ValueError(f"{self.name!r} must be a number, got {raw!r}")
        try:
            number = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name!r} must be a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{self.name!r} must be a finite number, got {raw!r}")
        return number


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed from raw columns or earlier derived features, inside the model.

    Attributes:
        name: Feature name (also its key; must be an identifier).
        op: One of :data:`DERIVED_OPS`.
        args: Names of the raw columns or derived features it reads.
        params: Op parameters (``factor`` for any op; ``value``, ``low``/``high`` or ``table``).
    """

    name: str
    op: str
    args: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of the deterministic train/validation/test split and the hash salt."""

    train: float
    validation: float
    test: float
    salt: str

    def fractions(self) -> dict[str, float]:
        """Return the split fractions keyed by split name."""
        return {"train": self.train, "validation": self.validation, "test": self.test}


@dataclass(frozen=True)
class DatasetSchema:
    """The whole dataset configuration. Build it with :meth:`load` or :meth:`from_dict`."""

    name: str
    id_column: str
    label: str
    columns: tuple[Column, ...]
    derived_features: tuple[DerivedFeature, ...]
    split: SplitConfig
    description: str = ""

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> DatasetSchema:
        """Load a schema from a JSON file, or the default AI4I schema when ``path`` is ``None``.

        The default is read with ``importlib.resources``: in Glue this module is imported from the
        ``--extra-py-files`` zip, where the packaged file has no filesystem path.
        """
        resource = Path(path) if path else importlib.resources.files("mlkit") / "datasets" / f"{DEFAULT_DATASET}.json"
        try:
            data = json.loads(resource.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SchemaError(f"dataset schema file not found: {path}") from None
        except json.JSONDecodeError as error:
            raise SchemaError(f"dataset schema {path} is not valid JSON: {error}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetSchema:
        """Build and validate a schema from its JSON form.

        Raises:
            SchemaError: Naming the first problem found in the configuration.
        """
        try:
            columns = tuple(_column_from_dict(c) for c in data["columns"])
            derived = tuple(
                DerivedFeature(
                    name=d["name"],
                    op=d["op"],
                    args=tuple(d["args"]),
                    params={k: v for k, v in d.items() if k not in ("name", "op", "args", "why")},
                )
                for d in data.get("derived_features", [])
            )
            split = data.get("split", {})
            schema = cls(
                name=data["name"],
                id_column=data["id_column"],
                label=data["label"],
                columns=columns,
                derived_features=derived,
                split=SplitConfig(
                    train=float(split.get("train", 0.7)),
                    validation=float(split.get("validation", 0.15)),
                    test=float(split.get("test", 0.15)),
                    salt=str(split.get("salt", data["name"])),
                ),
                description=data.get("description", ""),
            )
        except KeyError as missing:
            raise SchemaError(f"dataset schema is missing the required key {missing}") from None
        schema._check()
        return schema

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`."""
        columns = []
        for c in self.columns:
            item: dict[str, Any] = {"name": c.name, "kind": c.kind}
            if c.minimum is not None:
                item["min"] = c.minimum
            if c.maximum is not None:
                item["max"] = c.maximum
            if c.categories:
                item["categories"] = list(c.categories)
            if c.feature:
                item["feature"] = True
            columns.append(item)
        return {
            "name": self.name,
            "description": self.description,
            "id_column": self.id_column,
            "label": self.label,
            "columns": columns,
            "derived_features": [
                {"name": d.name, "op": d.op, "args": list(d.args), **d.params} for d in self.derived_features
            ],
            "split": {**self.split.fractions(), "salt": self.split.salt},
        }

    def _check(self) -> None:
        names = [c.name for c in self.columns]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise SchemaError(f"duplicate column names: {sorted(duplicates)}")
        for c in self.columns:
            if c.kind not in COLUMN_KINDS:
                raise SchemaError(f"column {c.name!r} has unknown kind {c.kind!r} (expected one of {COLUMN_KINDS})")
            if c.kind == "categorical" and not c.categories:
                raise SchemaError(f"categorical column {c.name!r} needs a non-empty 'categories' list")
            if c.feature and c.kind not in FEATURE_KINDS:
                raise SchemaError(f"column {c.name!r} of kind {c.kind!r} cannot be a model feature")
            if c.minimum is not None and c.maximum is not None and c.minimum > c.maximum:
                raise SchemaError(f"column {c.name!r} has min {c.minimum} above max {c.maximum}")
        for role, column in (("id_column", self.id_column), ("label", self.label)):
            if column not in names:
                raise SchemaError(f"{role} {column!r} is not one of the columns")
        if self.column(self.label).kind != "binary":
            raise SchemaError(f"label {self.label!r} must be a binary column")
        if not self.features:
            raise SchemaError("no column is marked as a feature")
        keys = [c.key for c in self.features]
        if len(set(keys)) != len(keys):
            raise SchemaError(f"feature names collide once turned into keys: {keys}")
        self._check_derived()
        fractions = self.split.fractions()
        if any(f <= 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-9:
            raise SchemaError(f"split fractions must be positive and add up to 1, got {fractions}")

    def _check_derived(self) -> None:
        known = {c.name: c for c in self.features}
        defined: set[str] = set()
        for d in self.derived_features:
            where = f"derived feature {d.name!r}"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", d.name):
                raise SchemaError(f"{where}: name must be a lower-case identifier")
            if d.name in defined or d.name in known or d.name in {c.key for c in self.features}:
                raise SchemaError(f"{where}: name is already used")
            if d.op not in DERIVED_OPS:
                raise SchemaError(f"{where}: unknown op {d.op!r} (expected one of {sorted(DERIVED_OPS)})")
            arity, required = DERIVED_OPS[d.op]
            if len(d.args) != arity:
                raise SchemaError(f"{where}: op {d.op!r} takes {arity} args, got {len(d.args)}")
            missing = [p for p in required if p not in d.params]
            if missing:
                raise SchemaError(f"{where}: op {d.op!r} needs parameter(s) {missing}")
            for arg in d.args:
                _check_derived_arg(where, d, arg, known, defined)
            defined.add(d.name)

    # ---- queries ------------------------------------------------------------------------------

    @property
    def column_names(self) -> list[str]:
        """All raw column names, in configuration order."""
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[Column]:
        """The raw columns the model takes as input, in configuration order."""
        return [c for c in self.columns if c.feature]

    @property
    def numeric_features(self) -> list[Column]:
        """Feature columns holding numbers."""
        return [c for c in self.features if c.kind != "categorical"]

    @property
    def categorical_features(self) -> list[Column]:
        """Feature columns holding categories."""
        return [c for c in self.features if c.kind == "categorical"]

    @property
    def curated_columns(self) -> list[str]:
        """Columns written to the curated splits: the id, the features and the label."""
        wanted = {self.id_column, self.label, *(c.name for c in self.features)}
        return [c.name for c in self.columns if c.name in wanted]

    def column(self, name: str) -> Column:
        """Return the column called ``name``.

        Raises:
            KeyError: If there is no such column.
        """
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def parse_record(self, record: Mapping[str, Any], columns: Sequence[Column] | None = None) -> dict[str, Any]:
        """Parse and check the given columns (all by default) of one record.

        Raises:
            ValueError: For the first missing or invalid value, naming the column.
        """
        parsed: dict[str, Any] = {}
        for c in self.columns if columns is None else columns:
            parsed[c.name] = c.parse(record.get(c.name))
        return parsed


def _check_derived_arg(
    where: str, feature: DerivedFeature, arg: str, known: Mapping[str, Column], defined: set[str]
) -> None:
    if arg not in known and arg not in defined:
        raise SchemaError(f"{where}: {arg!r} is neither a feature column nor an earlier derived feature")
    categorical = arg in known and known[arg].kind == "categorical"
    if feature.op != "lookup":
        if categorical:
            raise SchemaError(f"{where}: op {feature.op!r} needs numbers, {arg!r} is categorical")
        return
    if not categorical:
        raise SchemaError(f"{where}: lookup needs a categorical feature column, got {arg!r}")
    absent = [c for c in known[arg].categories if c not in feature.params["table"]]
    if absent:
        raise SchemaError(f"{where}: lookup table has no entry for categories {absent}")


def _column_from_dict(data: Mapping[str, Any]) -> Column:
    return Column(
        name=data["name"],
        kind=data["kind"],
        minimum=float(data["min"]) if "min" in data else None,
        maximum=float(data["max"]) if "max" in data else None,
        categories=tuple(str(c) for c in data.get("categories", ())),
        feature=bool(data.get("feature", False)),
    )
