"""Refuse invalid answers before cookiecutter writes a file.

copier checks the same rules itself: they are the `validator`s in copier.yml, copied into
cookiecutter.json as `_validators` by scripts/sync_cookiecutter.py. The one template line
below hands this script the answers; everything else is plain Python.
"""

import json
import sys

from jinja2.sandbox import SandboxedEnvironment

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def problems(answers: dict) -> list[str]:
    context = {name.lstrip("_"): value for name, value in answers.items()}
    env = SandboxedEnvironment()
    found = []
    for question, rule in answers["_validators"].items():
        message = " ".join(env.from_string(rule).render(context).split())
        if message:
            found.append(f"{question}: {message}")
    return found


if __name__ == "__main__":
    refused = problems(ANSWERS)
    if refused:
        print("Invalid answers, nothing was generated:", file=sys.stderr)
        for line in refused:
            print(f"  - {line}", file=sys.stderr)
        sys.exit(1)
