from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from support import SAMPLE, TARGETS, contract_file_for

from {{ cookiecutter.package_name }}.schema import Contract, ContractError


def test_project_contract_loads(contract: Contract) -> None:
    assert contract.columns[0] == contract.id
    assert contract.columns[-1] == contract.target.name
    assert "gender" not in contract.feature_names


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_every_target_kind_loads(kind: str, tmp_path: Path) -> None:
    assert Contract.load(contract_file_for(kind, tmp_path)).target.kind.value == kind


def test_encode_maps_categories_to_codes_and_unknowns_to_nan(contract: Contract) -> None:
    matrix = contract.encode(
        {
            "age": [30, 40],
            "annual_income": [50_000.0, None],
            "loan_amount": [1_000.0, 2_000.0],
            "employment_type": ["contractor", "astronaut"],
            "owns_home": [True, False],
        }
    )
    assert matrix.shape == (2, len(contract.features))
    assert matrix[0, 3] == 2.0
    assert math.isnan(matrix[1, 3])
    assert math.isnan(matrix[1, 1])


def test_one_record_encodes_like_a_row_of_a_batch(contract: Contract) -> None:
    """A request of one record takes the encoder's one-row path: same floats as a batch."""
    batch = {
        "age": [30, 40, 50],
        "annual_income": [50_000.0, None, 1.5],
        "loan_amount": [1_000.0, 2_000.0, 3_000.0],
        "employment_type": ["contractor", "astronaut", None],
        "owns_home": [True, False, True],
    }
    matrix = contract.encode(batch)
    for row in range(3):
        one = contract.encode({name: [values[row]] for name, values in batch.items()})
        assert one.shape == (1, len(contract.features))
        assert one[0].tobytes() == matrix[row].tobytes()  # NaN included


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": {"name": "default", "kind": "binary"}}, "needs `classes`"),
        ({"target": {"name": "y", "kind": "ordinal"}}, "target.kind"),
        ({"id": "age"}, "used twice"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_broken_contract_names_the_field(
    change: dict[str, object], message: str, tmp_path: Path
) -> None:
    raw = {**yaml.safe_load((SAMPLE / "schema.yaml").read_text()), **change}
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError, match=message):
        Contract.load(path)


def test_missing_contract_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="not found"):
        Contract.load(tmp_path / "nope.yaml")
