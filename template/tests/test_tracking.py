"""Where runs and models go: the embedded store unless MLFLOW_TRACKING_URI names another."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.tracking import DEFAULT_TRACKING_URI, tracking_uri


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_TRACKING_URI),
        ("", DEFAULT_TRACKING_URI),
        ("http://mlflow:5000", "http://mlflow:5000"),
    ],
)
def test_an_empty_tracking_uri_is_the_embedded_store(
    value: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A workflow passes an unset secret as "": that must not become MLflow's file store.
    if value is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", value)
    assert tracking_uri() == expected
