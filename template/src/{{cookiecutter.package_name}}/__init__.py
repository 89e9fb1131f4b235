"""The model behind {{ cookiecutter.project_slug }}: data contract, pipeline stages, service."""
