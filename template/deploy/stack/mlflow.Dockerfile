# syntax=docker/dockerfile:1
# MLflow's tracking server for the team stack (compose.yaml). MLflow's own image has neither
# psycopg2 (the PostgreSQL backend store) nor boto3 (artifacts in S3), so this one adds them,
# pinned. Keep mlflow at the version uv.lock resolves (`uv tree --package mlflow`) or newer:
# a server older than its clients can miss the endpoints they call.
FROM python:{{ cookiecutter.python_version }}-slim-bookworm
RUN pip install --no-cache-dir mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.8 \
    && useradd --system --uid 10001 --no-create-home mlflow
COPY create_buckets.py /opt/stack/create_buckets.py
USER 10001:10001
EXPOSE 5000
