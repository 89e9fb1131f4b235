"""An S3 server on loopback (moto's), for the s3 answer's DVC remote and MLflow artifacts.

moto answers the S3 API in a thread of the test process: the generated project's tools (DVC
through aiobotocore, MLflow through boto3) reach it over HTTP as they would reach MinIO or AWS.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

# moto takes any keys; keys and region in the environment win over an AWS profile.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3:
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """What a client needs: the keys, and MLflow's name for the endpoint."""
        return {**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def s3_server() -> Iterator[S3]:
    """moto on a free port of 127.0.0.1, with no bucket (as MinIO starts); stopped on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3(f"http://{host}:{port}")
        # moto keeps its buckets per process, not per server: an earlier test's are still there.
        reset = urllib.request.Request(f"{s3.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        yield s3
    finally:
        server.stop()
