"""`{{ cookiecutter.project_slug }} infer-schema`: a first draft of the data contract, read from a table.

Like TFDV's and pandera's schema inference, it guesses what the table shows (types, ranges with a
margin, category sets, missing values, an id, personal data) and says why; a person reviews the
draft. Every guess is a `Guess` line, printed and written from the same value, so what it says
is what it wrote. The draft passes the contract's own rules (`Contract`) or nothing is written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from .schema import ColumnType, Contract, ContractError, TaskKind
from .yaml_model import describe_errors

# A range is widened by this share of its width on each side: new data may reach a little
# past what this table saw without failing validation; a unit change still fails.
MARGIN = 0.1
# At most this many distinct strings (and at most this share of the rows) make a category set;
# more is free text, which stays out of the model.
MAX_CATEGORIES = 50
MAX_CATEGORY_SHARE = 0.5
# At most this many distinct whole numbers make a classification target when --task is not given.
MAX_INTEGER_CLASSES = 10
# A text column is personal data when this share of its values look like one.
PII_SHARE = 0.9

EMAIL = r"^[^@ ]+@[^@ ]+\.[A-Za-z]{2,}$"
# Digits with the separators people write; 7-15 digits (E.164 allows 15).
PHONE = r"^\+?[0-9 ()./-]{7,24}$"
_PII_NAMES = re.compile(r"(^|_)(e?mail|phone|mobile|name|surname|address|ssn|passport|iban)($|_)")
_PHONE_NAMES = re.compile(r"phone|mobile|tel|fax|contact")
_ID_NAMES = re.compile(r"(^|[_ ])id$|^id[_ ]|_key$|^uuid$", re.IGNORECASE)


class InferError(ValueError):
    """The table cannot give a contract; the message says why."""


@dataclass(frozen=True)
class Guess:
    role: str  # target | id | feature | other | params
    column: str
    what: str  # what was written, as the contract says it
    why: str

    def line(self) -> str:
        return f"  {self.role:<8} {self.column:<24} {self.what}  ({self.why})"


@dataclass(frozen=True)
class Draft:
    contract: dict[str, Any]  # schema.yaml, as written
    validation: dict[str, Any]  # the params.yaml `validation` keys to set
    guesses: list[Guess]


def infer_contract(
    table: pd.DataFrame,
    target: str,
    *,
    id_column: str | None = None,
    task: TaskKind | None = None,
    min_rows: int,
    max_null_fraction: float,
) -> Draft:
    """The draft contract and validation settings for `table`, and why each was chosen.

    `min_rows` and `max_null_fraction` are the project's current settings: they are loosened
    only as far as this table needs to pass them.
    """
    if table.empty:
        raise InferError("the table has no rows: a contract needs data to be read from")
    for name, what in ((target, "target"), (id_column, "id")):
        if name is not None and name not in table.columns:
            raise InferError(f"no {what} column {name!r}; the table has: {_names(table.columns)}")
    guesses: list[Guess] = []
    contract: dict[str, Any] = {"version": 1}
    guessed_id = id_column or _guess_id(table, target)
    if guessed_id is not None:
        contract["id"] = guessed_id
        why = "given with --id" if id_column else "named like an id, unique, never missing"
        guesses.append(Guess("id", guessed_id, "id", why))
    contract["target"], why = _target(table[target], task)
    guesses.append(Guess("target", target, _say(contract["target"], "name"), why))
    features: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    for name in table.columns:
        if name in (target, guessed_id):
            continue
        column, why = _column(table[name])
        is_text = column["type"] == ColumnType.TEXT
        (other if is_text else features).append(column)
        guesses.append(Guess("other" if is_text else "feature", name, _say(column, "name"), why))
    if not features:
        raise InferError("no column can be a feature: each is the target, the id or free text")
    contract["features"] = features
    contract["sensitive"] = []
    contract["other"] = other
    try:
        Contract.model_validate(contract)
    except ValidationError as exc:
        raise InferError(f"the contract cannot hold this table: {describe_errors(exc)}") from None
    validation = _validation(table, features, min_rows, max_null_fraction, guesses)
    return Draft(contract, validation, guesses)


def _names(columns: pd.Index) -> str:
    names = [str(name) for name in columns]
    shown = ", ".join(repr(name) for name in names[:12])
    return shown + (f" and {len(names) - 12} more" if len(names) > 12 else "")


def _say(fields: dict[str, Any], *skip: str) -> str:
    """A contract entry as one line: `type: numeric, min: 0, nullable: true`."""
    parts = []
    for key, value in fields.items():
        if key in skip:
            continue
        shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else value
        shown = str(shown).lower() if isinstance(value, bool) else shown
        parts.append(f"{key}: {shown}")
    return ", ".join(parts)


def _guess_id(table: pd.DataFrame, target: str) -> str | None:
    for name in table.columns:
        values = table[name]
        if name == target or not _ID_NAMES.search(str(name)) or values.isna().any():
            continue
        whole = pd.api.types.is_integer_dtype(values) or pd.api.types.is_string_dtype(values)
        if whole and values.is_unique:
            return str(name)
    return None


def _target(values: pd.Series, task: TaskKind | None) -> tuple[dict[str, Any], str]:
    name = str(values.name)
    missing = int(values.isna().sum())
    if missing:
        raise InferError(
            f"target {name!r} is missing in {missing} of {len(values)} rows: "
            "drop those rows (a row without its outcome cannot train or test a model)"
        )
    distinct = values.nunique()
    if distinct < 2:
        raise InferError(
            f"target {name!r} has one value ({values.iloc[0]!r}) in every row: "
            "there is nothing to learn"
        )
    numbers = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    whole = numbers and bool((values % 1 == 0).all())
    if task is None:
        if not numbers:
            task = TaskKind.BINARY if distinct == 2 else TaskKind.MULTICLASS
            why = f"{distinct} distinct labels"
        elif whole and distinct <= MAX_INTEGER_CLASSES:
            task = TaskKind.BINARY if distinct == 2 else TaskKind.MULTICLASS
            why = f"{distinct} distinct whole numbers (at most {MAX_INTEGER_CLASSES}: classes)"
        else:
            task = TaskKind.REGRESSION
            why = f"{distinct} distinct numbers"
    else:
        why = "given with --task"
    entry: dict[str, Any] = {"name": name, "kind": task.value}
    if task is TaskKind.REGRESSION:
        if not numbers:
            raise InferError(f"target {name!r} holds labels, not numbers: it cannot be regressed")
        if values.min() >= 0:
            entry["min"] = 0
            why += "; never negative"
        return entry, why
    if task is TaskKind.BINARY and distinct != 2:
        raise InferError(f"target {name!r} has {distinct} values: a binary target has exactly 2")
    if task is TaskKind.MULTICLASS and distinct < 3:
        raise InferError(f"target {name!r} has {distinct} values: a multiclass one needs 3 or more")
    if pd.api.types.is_bool_dtype(values):
        # Validation compares values with the classes, and false == 0, true == 1.
        entry["classes"] = [0, 1]
        why += " (true/false: 0 and 1)"
    else:
        classes = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
        entry["classes"] = [int(c) if whole else str(c) for c in classes]
    if task is TaskKind.BINARY:
        why += f"; {entry['classes'][-1]} (the last) is the positive class"
    return entry, why


def _column(values: pd.Series) -> tuple[dict[str, Any], str]:
    name = str(values.name)
    present = values.dropna()
    missing = len(values) - len(present)
    entry: dict[str, Any] = {"name": name}
    reasons = []
    if present.empty:
        raise InferError(f"column {name!r} is empty in every row: drop it from the table")
    if pd.api.types.is_datetime64_any_dtype(values) or isinstance(values.dtype, pd.PeriodDtype):
        raise InferError(
            f"column {name!r} holds dates, which the contract has no type for: drop it, or "
            "turn it into numbers first (days since an event, a weekday)"
        )
    if pd.api.types.is_bool_dtype(present) or _is_bool_text(present):
        entry["type"] = ColumnType.BOOLEAN.value
        reasons.append("true/false values")
    elif pd.api.types.is_numeric_dtype(present):
        # What the file's reader made of it: "59.0" reads as a float, and validation checks
        # the type read. A whole column with gaps reads as floats too; validation allows that.
        whole = pd.api.types.is_integer_dtype(values) or (
            missing > 0 and bool((present % 1 == 0).all())
        )
        entry["type"] = (ColumnType.INTEGER if whole else ColumnType.NUMERIC).value
        if len(present):
            low, high = float(present.min()), float(present.max())
            entry["min"], entry["max"] = _widened(low, high, whole)
            reasons.append(f"seen {_num(low)} to {_num(high)}, widened by {MARGIN:.0%}")
    else:
        text = present.astype(str)
        distinct = text.nunique()
        pii = _personal(name, text)
        if _dates(text):
            entry["type"] = ColumnType.TEXT.value
            reasons.append("dates: kept out of the model (make numbers of them to use them)")
        elif pii is not None:
            entry["type"] = ColumnType.TEXT.value
            pattern, why = pii
            if pattern is not None:
                entry["pattern"] = pattern
            entry["pii"] = True
            reasons.append(why)
        elif distinct <= MAX_CATEGORIES and distinct <= max(2, MAX_CATEGORY_SHARE * len(text)):
            entry["type"] = ColumnType.CATEGORICAL.value
            entry["categories"] = sorted(text.unique().tolist())
            reasons.append(f"{distinct} distinct values")
        else:
            entry["type"] = ColumnType.TEXT.value
            reasons.append(f"{distinct} distinct values: free text, kept out of the model")
    if missing:
        entry["nullable"] = True
        reasons.append(f"{missing / len(values):.1%} missing")
    else:
        reasons.append("never missing")
    return entry, "; ".join(reasons)


def _dates(text: pd.Series) -> bool:
    """Whether the strings are ISO dates or times ("2024-01-31", "2024-01-31T09:00:00")."""
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    return bool(len(text)) and float(parsed.notna().mean()) >= PII_SHARE


def _is_bool_text(values: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(values) and bool(
        len(values) and values.map(lambda v: isinstance(v, bool)).all()
    )


def _personal(name: str, text: pd.Series) -> tuple[str | None, str] | None:
    """(pattern, why) when the column looks like personal data, else None."""
    if len(text):
        for pattern, what in ((EMAIL, "e-mail addresses"), (PHONE, "phone numbers")):
            share = float(text.str.fullmatch(pattern).mean())
            if what == "phone numbers":
                # Written as people write them (+44 ..., (020) ...), or named so: a column of
                # bare digits and dashes is as likely a date, a code or an account number.
                written = float(text.str.match(r"[+(]").mean())
                named = _PHONE_NAMES.search(name.lower()) is not None
                share = share if named or written >= PII_SHARE else 0.0
                share = min(share, float((text.str.count(r"[0-9]") >= 7).mean()))
            if share >= PII_SHARE:
                return pattern, f"{share:.0%} of values look like {what}: personal data"
    if _PII_NAMES.search(name.lower()):
        return None, "named like personal data"
    return None


def _widened(low: float, high: float, whole: bool) -> tuple[float, float]:
    margin = (high - low) * MARGIN or abs(high) * MARGIN
    lower = low - margin
    # A quantity never below zero in the table (an amount, a count) stays so.
    lower = max(lower, 0.0) if low >= 0 else lower
    upper = high + margin
    if whole:
        return float(math.floor(lower)), float(math.ceil(upper))
    return _round(lower, math.floor), _round(upper, math.ceil)


def _round(value: float, direction: Any, digits: int = 3) -> float:
    """`value` to `digits` significant digits, rounded outward (never inside the range)."""
    if value == 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(value))))
    return float(direction(value * scale) / scale)


def _num(value: float) -> str:
    return f"{value:.6g}"


def _validation(
    table: pd.DataFrame,
    features: list[dict[str, Any]],
    min_rows: int,
    max_null_fraction: float,
    guesses: list[Guess],
) -> dict[str, Any]:
    validation: dict[str, Any] = {}
    if len(table) < min_rows:
        validation["min_rows"] = max(1, len(table) // 2)
        why = f"the table has {len(table)} rows, under the {min_rows} required: half of it"
        guesses.append(Guess("params", "min_rows", str(validation["min_rows"]), why))
    nullable = [f["name"] for f in features if f.get("nullable")]
    worst = max((float(table[name].isna().mean()) for name in nullable), default=0.0)
    if worst > max_null_fraction:
        validation["max_null_fraction"] = min(1.0, math.ceil((worst + 0.05) * 100) / 100)
        why = f"a column is {worst:.0%} missing, over the {max_null_fraction} allowed"
        guesses.append(
            Guess("params", "max_null_fraction", str(validation["max_null_fraction"]), why)
        )
    bounds: dict[str, list[float]] = {}
    for feature in features:
        if feature["type"] not in (ColumnType.NUMERIC, ColumnType.INTEGER):
            continue
        values = table[feature["name"]].dropna().astype(float)
        if values.empty:
            continue
        mean, std = float(values.mean()), float(values.std(ddof=0))
        spread = std or abs(mean) * MARGIN
        low = _round(mean - spread, math.floor)
        low = max(low, 0.0) if values.min() >= 0 else low
        bounds[feature["name"]] = [low, _round(mean + spread, math.ceil)]
        why = f"mean {_num(mean)}, one standard deviation ({_num(std)}) either side"
        guesses.append(
            Guess("params", f"mean_bounds.{feature['name']}", str(bounds[feature["name"]]), why)
        )
    validation["mean_bounds"] = bounds
    return validation


def write_draft(draft: Draft, contract_path: Path, params_path: Path, source: str) -> None:
    """schema.yaml in full, and only the `validation` keys of params.yaml (comments kept)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    header = (
        f"# The data contract, drafted by `infer-schema` from {source}: review every guess\n"
        "# (move columns a model must not use to `sensitive:` for the fairness checks).\n"
    )
    with contract_path.open("w", encoding="utf-8") as out:
        out.write(header)
        yaml.dump(_flow_lists(draft.contract, CommentedMap, CommentedSeq), out)
    params_yaml = YAML()
    params_yaml.width = 4096
    params_yaml.preserve_quotes = True
    params = params_yaml.load(params_path.read_text(encoding="utf-8"))
    for key, value in draft.validation.items():
        params["validation"][key] = _flow_lists(value, CommentedMap, CommentedSeq)
    with params_path.open("w", encoding="utf-8") as out:
        params_yaml.dump(params, out)


def _flow_lists(value: Any, mapping: Any, sequence: Any) -> Any:
    """Short lists inline (`[0, 1]`), as a person writes them."""
    if isinstance(value, dict):
        return mapping({k: _flow_lists(v, mapping, sequence) for k, v in value.items()})
    if isinstance(value, list):
        items = [_flow_lists(v, mapping, sequence) for v in value]
        seq = sequence(items)
        if not any(isinstance(v, dict) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def task_kind(value: str | None) -> TaskKind | None:
    if value is None:
        return None
    try:
        return TaskKind(value)
    except ValueError:
        kinds = " | ".join(kind.value for kind in TaskKind)
        raise InferError(f"--task {value!r}: use one of {kinds}") from None


def check_writable(contract_path: Path, force: bool) -> None:
    if contract_path.exists() and not force:
        raise ContractError(
            f"{contract_path} exists: pass --force to replace it (git keeps the one it replaces)"
        )
