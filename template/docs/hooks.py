"""ProperDocs' hook (properdocs.yml): the reference pages join every build, written from the
code ({{ cookiecutter.package_name }}/reference.py)."""

from __future__ import annotations

from properdocs.config.defaults import ProperDocsConfig
from properdocs.structure.files import File, Files

from {{ cookiecutter.package_name }}.reference import pages


def on_files(files: Files, config: ProperDocsConfig) -> Files:
    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    return files
