"""What a model says it takes and returns: its MLflow signature, read as data.

ModelBoard checks evaluation sets and production logs against the types the
model's signature declares (MLflow's column types), passes values to the model
in those types, and lets a value be missing only where the signature does not
mark the column required — MLflow's `infer_signature` marks a column optional
exactly when the data it was inferred from had missing values in it. Parsing
is pure (the MLmodel file's JSON), so the server can read a signature without
loading anything (docs/decisions/0013).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

ColumnType = Literal["double", "float", "long", "integer", "boolean", "string", "datetime"]
COLUMN_TYPES: tuple[ColumnType, ...] = ("double", "float", "long", "integer", "boolean", "string", "datetime")
NUMBER_TYPES: frozenset[str] = frozenset({"double", "float", "long", "integer"})
WHOLE_NUMBER_TYPES: frozenset[str] = frozenset({"long", "integer"})
CATEGORY_TYPES: frozenset[str] = frozenset({"string", "boolean"})
Kind = Literal["numerical", "categorical", "datetime"]
InputsSource = Literal["signature", "input example"]

HOW_TO_LOG = ("log the model with signature=mlflow.models.infer_signature(X, model.predict_proba(X)) "
              "where X is a pandas DataFrame of the inputs")


class SignatureProblem(ValueError):
    """The signature cannot be used for tabular evaluation; the message says how to log the model instead."""


@dataclass(frozen=True)
class InputColumn:
    """One named input of the model, as its signature declares it."""

    name: str
    type: ColumnType
    required: bool = True

    @property
    def kind(self) -> Kind:
        """How monitoring and pages treat the column: numbers drift as numbers, text and flags as categories."""
        if self.type in NUMBER_TYPES:
            return "numerical"
        return "categorical" if self.type in CATEGORY_TYPES else "datetime"

    def describe(self) -> str:
        """'lactate (number, may be missing)' — how the card and error messages name the column."""
        words = {"double": "number", "float": "number", "long": "whole number", "integer": "whole number",
                 "boolean": "true/false", "string": "text", "datetime": "date and time"}[self.type]
        return f"{self.name} ({words}{'' if self.required else ', may be missing'})"


@dataclass(frozen=True)
class OutputSpec:
    """What the signature says `predict` returns: a column type or a tensor with its dtype and shape."""

    kind: Literal["column", "tensor", "none"]
    dtype: str = ""
    width: int | None = None  # columns per row (tensor shape[1], or the number of output columns)

    @property
    def is_decision(self) -> bool:
        """A single whole-number, boolean or text output: classes, not a probability."""
        whole = {"long", "integer", "int64", "int32", "int8", "int16", "bool", "boolean", "string", "str", "object"}
        return self.width in (None, 1) and self.dtype in whole

    def describe(self) -> str:
        if self.kind == "none":
            return "no output declared"
        shape = f", {self.width} per row" if self.width else ""
        return f"{self.kind} of {self.dtype}{shape}"


@dataclass(frozen=True)
class ModelSignature:
    inputs: tuple[InputColumn, ...]
    output: OutputSpec
    source: InputsSource = "signature"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def column(self, name: str) -> InputColumn:
        return next(c for c in self.inputs if c.name == name)


def parse_inputs(raw: str | list[dict[str, Any]] | None, what: str) -> tuple[InputColumn, ...]:
    """The column specs of an MLmodel signature's `inputs` (JSON text or parsed list)."""
    specs = json.loads(raw) if isinstance(raw, str) else raw
    if not specs:
        raise SignatureProblem(f"{what} was logged without a signature or input example: {HOW_TO_LOG}")
    columns = []
    for spec in specs:
        kind = str(spec.get("type", ""))
        if kind == "tensor" or "name" not in spec:
            raise SignatureProblem(f"{what} has a tensor signature without column names; ModelBoard evaluates "
                                   f"tabular models with named columns: {HOW_TO_LOG}")
        if kind not in COLUMN_TYPES:
            raise SignatureProblem(f"{what}: input '{spec['name']}' has type {kind!r}, which ModelBoard cannot "
                                   f"check (it takes {', '.join(COLUMN_TYPES)})")
        columns.append(InputColumn(str(spec["name"]), kind, bool(spec.get("required", True))))
    return tuple(columns)


def parse_output(raw: str | list[dict[str, Any]] | None) -> OutputSpec:
    """The signature's `outputs`: one tensor, or one or more columns."""
    specs = json.loads(raw) if isinstance(raw, str) else raw
    if not specs:
        return OutputSpec("none")
    first = specs[0]
    if first.get("type") == "tensor":
        tensor = first.get("tensor-spec", {})
        shape = tensor.get("shape") or []
        return OutputSpec("tensor", str(tensor.get("dtype", "")), int(shape[1]) if len(shape) > 1 else 1)
    return OutputSpec("column", str(first.get("type", "")), len(specs))


def columns_from_example(columns: list[str], rows: list[list[Any]]) -> tuple[InputColumn, ...]:
    """Input columns read from a logged input example when the model has no signature: the JSON values'
    types, each column optional (nothing marks it required)."""
    out = []
    for i, name in enumerate(columns):
        values = [r[i] for r in rows if i < len(r) and r[i] is not None]
        if values and all(isinstance(v, bool) for v in values):
            kind: ColumnType = "boolean"
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            kind = "long"
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            kind = "double"
        else:
            kind = "string"
        out.append(InputColumn(str(name), kind, required=False))
    return tuple(out)
