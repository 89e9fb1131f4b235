"""Create the stack's buckets (compose.yaml's one-shot `buckets` service); harmless again.

MinIO starts with no bucket, and neither MLflow nor DVC creates the one it writes to. boto3
reads the endpoint from AWS_ENDPOINT_URL and the keys from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY.
"""

from __future__ import annotations

import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def create_buckets(names: list[str]) -> None:
    s3 = boto3.client("s3")
    for name in names:
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        except (BotoCoreError, ClientError) as error:
            sys.exit(f"bucket {name}: {error}")
        print(f"bucket {name}: ready")


if __name__ == "__main__":
    create_buckets(sys.argv[1:])
