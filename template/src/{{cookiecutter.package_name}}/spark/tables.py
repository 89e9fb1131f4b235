"""Tables in and out of Spark: any path the cluster can read, and outputs that appear whole.

Local paths and HDFS work as they are. An object store needs Hadoop's connector on the
cluster's classpath (S3: `spark.jars.packages org.apache.hadoop:hadoop-aws:<Hadoop version>`,
from Maven) and its credentials; the paths are then s3a://bucket/key.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from ..data import DataError
from . import SparkError


def located(path: str) -> str:
    """A path with no scheme is taken from this process's working directory (Spark's JVM may
    have started in another one)."""
    return path if "://" in path else str(Path(path).absolute())


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """A CSV (a name ending in .csv: a file or a folder of them) or Parquet file or folder,
    refused in one line when it is missing or unreadable. Its rows are read by the job."""
    reader = spark.read
    path = located(path)
    try:
        if path.rstrip("/").endswith(".csv"):
            return reader.option("header", True).option("inferSchema", True).csv(path)
        return reader.parquet(path)
    except AnalysisException as exc:
        condition = exc.getCondition() or ""
        if condition == "PATH_NOT_FOUND":
            raise DataError(f"{path}: no such file or folder") from None
        if condition == "UNABLE_TO_INFER_SCHEMA":
            raise DataError(f"{path}: no rows (no data file in it)") from None
        raise DataError(f"{path}: not readable: {exc.getMessage()}") from None
    except Exception as exc:  # the JVM's own errors (Py4JJavaError) reach us untyped
        raise DataError(f"{path}: not readable: {first_line(exc)}") from None


def no_rows(path: str) -> DataError:
    return DataError(f"{path}: no rows")


def write_whole(
    spark: SparkSession, outputs: list[tuple[DataFrame, str]], source: str
) -> list[int]:
    """Write each frame as Parquet to a temporary folder beside its path, then rename them all
    into place: a failed job leaves nothing, neither half an output nor a temporary folder.
    An output that was there is replaced; none is written when `source` had no rows.
    Returns the rows of each output."""
    staged: list[tuple[str, str]] = []
    rows = []
    try:
        for frame, path in outputs:
            path = located(path)
            partial = f"{path.rstrip('/')}.partial-{uuid4().hex[:12]}"
            staged.append((partial, path))
            frame.write.mode("errorifexists").parquet(partial)
            rows.append(spark.read.parquet(partial).count())
        if not sum(rows):
            raise no_rows(source)
    except Exception as exc:
        for partial, _ in staged:
            _delete(spark, partial)
        if isinstance(exc, DataError | SparkError):
            raise
        raise SparkError(f"the Spark job failed, nothing was written: {first_line(exc)}") from exc
    for partial, path in staged:
        _replace(spark, partial, path)
    return rows


def first_line(exc: Exception) -> str:
    """The cause in one line; a JVM error's own message rather than py4j's wrapper."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString() if java is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Files:
    """exists/rename/delete on the outputs' file system: Hadoop's, through the driver's JVM
    (local, HDFS, s3a...); with Spark Connect, which has no JVM here, local paths only."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.jvm = getattr(spark, "_jvm", None)

    def _hadoop(self, path: str) -> tuple[Any, Any]:
        hadoop_path = self.jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
        # Hadoop's configuration has no public accessor in pyspark.
        configuration = self.spark._jsc.hadoopConfiguration()
        return hadoop_path.getFileSystem(configuration), hadoop_path

    def _local(self, path: str) -> Path:
        scheme = urlsplit(path).scheme
        if scheme not in ("", "file"):
            raise SparkError(
                f"{path}: with Spark Connect the outputs are renamed by this client, which "
                "reaches local paths only; use --master for other file systems"
            )
        return Path(path.removeprefix("file://") if scheme else path)

    def exists(self, path: str) -> bool:
        if self.jvm is None:
            return self._local(path).exists()
        filesystem, hadoop_path = self._hadoop(path)
        return bool(filesystem.exists(hadoop_path))

    def rename(self, source: str, target: str) -> None:
        if self.jvm is None:
            self._local(source).rename(self._local(target))
            return
        filesystem, from_path = self._hadoop(source)
        if not filesystem.rename(from_path, self._hadoop(target)[1]):
            raise SparkError(f"could not rename {source} to {target}")

    def delete(self, path: str) -> None:
        if self.jvm is None:
            shutil.rmtree(self._local(path), ignore_errors=True)
            return
        filesystem, hadoop_path = self._hadoop(path)
        filesystem.delete(hadoop_path, True)


def _delete(spark: SparkSession, path: str) -> None:
    _Files(spark).delete(path)


def _replace(spark: SparkSession, partial: str, path: str) -> None:
    files = _Files(spark)
    old = None
    if files.exists(path):
        old = f"{path.rstrip('/')}.old-{uuid4().hex[:12]}"
        files.rename(path, old)
    files.rename(partial, path)
    if old is not None:
        files.delete(old)
