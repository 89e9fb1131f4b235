"""The data contract: one YAML file that validation, features, serving and drift all read.

This module must stay light (pydantic, PyYAML, numpy only): the serving image imports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .yaml_model import load_yaml_model


class ContractError(ValueError):
    """The contract file is missing or does not describe a usable table."""


class ColumnType(StrEnum):
    NUMERIC = "numeric"
    INTEGER = "integer"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    TEXT = "text"  # free text (an e-mail, a phone number): never a feature, `pattern` checks it


class TaskKind(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def usable_name(name: str) -> str:
    """A column name every part can hold: the API makes it a field of a pydantic model."""
    if name != name.strip() or not name.isprintable():
        raise ValueError(f"column name {name!r}: no spaces around it, no control characters")
    if name.startswith("_"):
        # pydantic keeps such fields private: the API could never receive the column.
        raise ValueError(f"column name {name!r}: a name may not start with '_'")
    if name == "columns" or hasattr(BaseModel, name):
        # `columns` is how a request says it is a columnar batch; the others are the API's
        # models' own attributes.
        raise ValueError(f"column name {name!r} is reserved by the API: rename the column")
    return name


ColumnName = Annotated[str, Field(min_length=1), AfterValidator(usable_name)]


class Column(_Strict):
    name: ColumnName
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    # Text only: a regular expression every value must match. Validation (Python), the API
    # (pydantic's Rust engine) and its OpenAPI clients (ECMA) each read it: keep to what they
    # agree on, explicit sets such as [^@ ] rather than \s, \w or \d (their Unicode sets differ).
    pattern: str | None = None
    # Personal data (an e-mail, a phone number): never written raw to the prediction log, an
    # API example, the model card or a report (see `Contract.pii`).
    pii: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _rules_fit_type(self) -> Self:
        if self.pattern is not None:
            if self.type is not ColumnType.TEXT:
                raise ValueError(f"column {self.name!r}: only text columns take `pattern`")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                message = f"column {self.name!r}: `pattern` is no regular expression: {exc}"
                raise ValueError(message) from None
        is_number = self.type in (ColumnType.NUMERIC, ColumnType.INTEGER)
        if self.type is ColumnType.CATEGORICAL:
            if not self.categories:
                raise ValueError(f"column {self.name!r}: a categorical column needs `categories`")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"column {self.name!r}: `categories` has duplicates")
        elif self.categories is not None:
            raise ValueError(f"column {self.name!r}: only categorical columns take `categories`")
        if not is_number and (self.min is not None or self.max is not None):
            raise ValueError(f"column {self.name!r}: only numeric columns take `min`/`max`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} is above max {self.max}")
        return self


class Target(_Strict):
    name: ColumnName
    kind: TaskKind
    classes: tuple[int | str, ...] | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _classes_fit_kind(self) -> Self:
        if self.kind is TaskKind.REGRESSION:
            if self.classes is not None:
                raise ValueError(f"target {self.name!r}: a regression target takes no `classes`")
            return self
        expected = 2 if self.kind is TaskKind.BINARY else 3
        if self.classes is None or len(self.classes) < expected:
            raise ValueError(
                f"target {self.name!r}: a {self.kind} target needs `classes` "
                f"({'exactly 2' if expected == 2 else 'at least 3'})"
            )
        if self.kind is TaskKind.BINARY and len(self.classes) != 2:
            raise ValueError(f"target {self.name!r}: a binary target needs exactly 2 classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"target {self.name!r}: `classes` has duplicates")
        return self

    @property
    def is_classification(self) -> bool:
        return self.kind is not TaskKind.REGRESSION


class Contract(_Strict):
    version: int = 1
    id: ColumnName | None = None
    target: Target
    features: tuple[Column, ...] = Field(min_length=1)
    sensitive: tuple[Column, ...] = ()
    # Other columns of the table (an e-mail...): validated and accepted by the API, never
    # given to the model or the fairness checks.
    other: tuple[Column, ...] = ()

    @model_validator(mode="after")
    def _names_are_unique(self) -> Self:
        names = [self.target.name, *(c.name for c in self.described)]
        if self.id is not None:
            names.append(self.id)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"column names used twice: {', '.join(duplicates)}")
        for column in self.features:
            # The model, the drift checks and the API's example need a feature's raw values.
            if column.pii or column.type is ColumnType.TEXT:
                what = "`pii: true`" if column.pii else "type text"
                raise ValueError(
                    f"feature {column.name!r}: {what} is not allowed on a model feature; "
                    "list the column under `other:` (personal data stays out of the model)"
                )
        return self

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        return load_yaml_model(path, cls, ContractError, "data contract")

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def columns(self) -> list[str]:
        """Every column the raw table must have, in contract order."""
        head = [self.id] if self.id is not None else []
        return [*head, *(c.name for c in self.described), self.target.name]

    @property
    def described(self) -> tuple[Column, ...]:
        """The features, sensitive and other columns, in contract order."""
        return (*self.features, *self.sensitive, *self.other)

    @property
    def pii(self) -> tuple[str, ...]:
        """The names of the personal-data columns (`pii: true`)."""
        return tuple(c.name for c in self.described if c.pii)

    def column(self, name: str) -> Column:
        for column in self.described:
            if column.name == name:
                return column
        raise KeyError(name)

    def encode(self, table: Mapping[str, Any]) -> np.ndarray:
        """Feature columns as one float matrix: categories become their index in the contract.

        Missing values and unknown categories become NaN, which the model's imputers handle.
        `table` maps column names to sequences: a DataFrame, or a dict of lists from a request.
        """
        columns = [table[column.name] for column in self.features]
        if all(isinstance(values, list) and len(values) == 1 for values in columns):
            # One record (an API request): a Python loop beats a few numpy calls per column.
            row = [
                _code(codes, values[0]) for codes, values in zip(self._codes, columns, strict=True)
            ]
            return np.array([row], dtype=np.float64)
        return np.column_stack(
            [
                _encode_column(codes, values)
                for codes, values in zip(self._codes, columns, strict=True)
            ]
        )

    @cached_property
    def _codes(self) -> tuple[dict[str, float] | None, ...]:
        """Per feature: the category -> code map of a categorical column, else None."""
        return tuple(
            {category: float(i) for i, category in enumerate(column.categories)}
            if column.categories is not None
            else None
            for column in self.features
        )


def _code(codes: dict[str, float] | None, value: Any) -> float:
    if value is None:
        return math.nan
    if codes is not None:
        return codes.get(value, math.nan) if isinstance(value, str) else math.nan
    return float(value)


def _encode_column(codes: dict[str, float] | None, values: Any) -> np.ndarray:
    if codes is not None:
        return np.fromiter(
            (codes.get(v, math.nan) if isinstance(v, str) else math.nan for v in values),
            dtype=np.float64,
        )
    if hasattr(values, "to_numpy"):
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.asarray(values if isinstance(values, Sequence) else list(values), dtype=np.float64)
