from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.schema import Contract, ContractError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load(ROOT / "schema.yaml")


def test_the_project_contract_loads(contract: Contract) -> None:
    assert contract.target.name in contract.columns
    assert contract.feature_names[0] == "age"


def test_encode_maps_categories_to_codes_and_gaps_to_nan(contract: Contract) -> None:
    row = {
        "age": [30],
        "annual_income": [None],
        "loan_amount": [1000.0],
        "employment_type": ["retired"],
        "owns_home": [True],
    }
    encoded = contract.encode(row)
    assert encoded.shape == (1, 5)
    assert encoded[0, 3] == 4.0
    assert np.isnan(encoded[0, 1])


def test_unknown_category_becomes_nan(contract: Contract) -> None:
    row = {
        "age": [30],
        "annual_income": [1.0],
        "loan_amount": [600.0],
        "employment_type": ["astronaut"],
        "owns_home": [False],
    }
    assert np.isnan(contract.encode(row)[0, 3])


def test_a_categorical_column_without_categories_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(
        "target: {name: y, kind: regression}\nfeatures: [{name: colour, type: categorical}]\n"
    )
    with pytest.raises(ContractError, match=r"colour.*needs `categories`"):
        Contract.load(path)
