"""The team stack's object store, without Docker: its bucket script against an S3 server.

MinIO is not packaged here and no container runs, so moto stands in for it on loopback. The
s3 answer's DVC remote and MLflow artifacts are proven in test_pipeline.py's PostgreSQL-backed
tracking-server test, on that test's project and pipeline run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator

import pytest

from blueprint import ROOT
from object_store import CREDENTIALS, S3, s3_server

SCRIPT = ROOT / "template" / "deploy" / "stack" / "create_buckets.py"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    """An empty S3 server, and the variables compose.yaml gives the `buckets` service."""
    with s3_server() as server:
        for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint}.items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def create_buckets() -> Callable[[list[str]], None]:
    # The script is the template's file as it is (it holds no Jinja), run in this process.
    spec = importlib.util.spec_from_file_location("create_buckets", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[[list[str]], None] = module.create_buckets
    return function


def test_the_stack_makes_its_buckets_and_can_run_again(
    s3: S3, create_buckets: Callable[[list[str]], None], capsys: pytest.CaptureFixture[str]
) -> None:
    s3.client().create_bucket(Bucket="dvc")
    s3.client().put_object(Bucket="dvc", Key="kept", Body=b"data")

    create_buckets(["mlflow", "dvc"])
    create_buckets(["mlflow", "dvc"])  # compose runs it at every `up`

    names = {bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]}
    assert names == {"mlflow", "dvc"}
    assert s3.keys("dvc") == ["kept"], "an existing bucket lost its objects"
    assert capsys.readouterr().out.count("ready") == 4


def test_a_bucket_that_cannot_be_made_is_named(
    s3: S3, create_buckets: Callable[[list[str]], None]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        create_buckets(["mlflow", "ab"])
    assert str(stopped.value.code).startswith("bucket ab: ")
    assert "InvalidBucketName" in str(stopped.value.code)
