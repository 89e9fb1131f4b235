"""`{{ cookiecutter.project_slug }}`: one command per pipeline stage; dvc.yaml and the Makefile call these.

Heavy libraries are imported inside the commands so `--help` answers at once. Expected
errors (bad parameters, bad data, missing inputs) print one clear message and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import ParamsOption, expected_errors
{%- if cookiecutter.include_serving %}
from .delivery.cli import app as delivery_app
{%- endif %}
{%- if cookiecutter.include_monitoring %}
from .monitoring.cli import app as monitoring_app
{%- endif %}
{%- if cookiecutter.scale_out == 'spark' %}
from .spark import Engine, EngineOption, MasterOption, SparkError
{%- endif %}

app = typer.Typer(
    help="{{ cookiecutter.project_name }}: data, validation, training, evaluation, registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

REPORTS = Path("reports")
TRAIN_RUN = REPORTS / "train.json"


@app.command("make-sample")
def make_sample(
    params_file: ParamsOption = Path("params.yaml"),
    rows: Annotated[int | None, typer.Option(help="Rows; default from params.yaml.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed; default from params.yaml.")] = None,
) -> None:
    """Write the synthetic sample data set to the raw data path (data.raw)."""
    with expected_errors():
        from .config import load_params
        from .data import make_sample as build_sample
        from .data import write_table
        from .schema import Contract

        params = load_params(params_file)
        contract = Contract.load(params.data.contract)
        table = build_sample(
            contract,
            rows if rows is not None else params.sample.rows,
            seed if seed is not None else params.sample.seed,
        )
        write_table(table, params.data.raw)
        typer.echo(f"wrote {len(table)} rows to {params.data.raw}")


@app.command("infer-schema")
def infer_schema(
    table_file: Annotated[Path, typer.Argument(help="Your table: a .csv or .parquet file.")],
    target: Annotated[str, typer.Option(help="The column the model predicts.")],
    id_column: Annotated[
        str | None, typer.Option("--id", help="The id column; guessed when one is unique.")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="binary | multiclass | regression; guessed from the target."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace the existing contract.")] = False,
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Draft the data contract (data.contract) and validation settings from a table."""
    from .infer import InferError

    with expected_errors(InferError):
        from .config import load_params
        from .data import read_table
        from .infer import check_writable, infer_contract, task_kind, write_draft
        from .schema import TaskKind

        params = load_params(params_file)
        check_writable(params.data.contract, force)
        table = read_table(table_file)
        draft = infer_contract(
            table,
            target,
            id_column=id_column,
            task=task_kind(task),
            min_rows=params.validation.min_rows,
            max_null_fraction=params.validation.max_null_fraction,
        )
        typer.echo(f"{table_file}: {len(table)} rows, {len(table.columns)} columns. Guessed:")
        for guess in draft.guesses:
            typer.echo(guess.line())
        kind = TaskKind(draft.contract["target"]["kind"])
        floors = params.promotion.gate(kind).min
        typer.echo(
            f"  kept     promotion.{kind.value}.min {floors}  (a first model must reach these "
            "floors, set for the sample data: set the ones your model must reach)"
        )
        write_draft(draft, params.data.contract, params_file, str(table_file))
        typer.echo(
            f"wrote {params.data.contract} and validation in {params_file}: review them, then "
            f"`make data SOURCE={table_file}` and `make pipeline`"
        )


@app.command("import-data")
def import_data(
    source: Annotated[Path, typer.Argument(help="Your table: a .csv or .parquet file.")],
    params_file: ParamsOption = Path("params.yaml"),
) -> None:
    """Put a table at the raw data path (data.raw), converted to its format if need be."""
    with expected_errors():
        import shutil

        from .config import load_params
        from .data import read_table, write_table

        raw = load_params(params_file).data.raw
        table = read_table(source)  # refuses a missing, empty or unreadable file first
        if source.resolve() == raw.resolve():
            typer.echo(f"{raw} is already the raw data")
            return
        raw.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == raw.suffix:
            shutil.copyfile(source, raw)  # byte for byte: DVC's MD5 is the source's
        else:
            write_table(table, raw)
        typer.echo(f"wrote {len(table)} rows from {source} to {raw}")


@app.command()
def validate(
    params_file: ParamsOption = Path("params.yaml"),
{%- if cookiecutter.scale_out == 'spark' %}
    engine: EngineOption = Engine.LOCAL,
    master: MasterOption = None,
    data: Annotated[
        str | None, typer.Option(help="The table to check, any path Spark reads; default data.raw.")
    ] = None,
{%- endif %}
) -> None:
    """Check the raw data against the contract; write reports/validation.{json,md}."""
    with expected_errors({% if cookiecutter.scale_out == 'spark' %}SparkError{% endif %}):
        from .config import load_params
        from .data import read_table
        from .schema import Contract
        from .validation import (
            failure_message,
            quiet_great_expectations,
            validate_table,
            write_reports,
        )

        params = load_params(params_file)
        contract = Contract.load(params.data.contract)
        quiet_great_expectations()
{%- if cookiecutter.scale_out == 'spark' %}
        if engine is Engine.SPARK:
            from .spark.validation import validate_on_spark

            table_path = data or str(params.data.raw)
            report = validate_on_spark(table_path, contract, params.validation, master)
        else:
            report = validate_table(
                read_table(params.data.raw), contract, params.validation, str(params.data.raw)
            )
{%- else %}
        table = read_table(params.data.raw)
        report = validate_table(table, contract, params.validation, str(params.data.raw))
{%- endif %}
        write_reports(report, REPORTS)
        if not report.success:
            typer.echo(f"error: {failure_message(report)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{params.data.raw}: {report.rows} rows, {len(report.checks)} checks passed")


@app.command()
def split(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Split the raw data into train and test sets (by id: a row keeps its side as data grows)."""
    with expected_errors():
        from .config import load_params
        from .data import read_table
        from .features import split_table, write_split
        from .schema import Contract

        params = load_params(params_file)
        contract = Contract.load(params.data.contract)
        train, test = split_table(
            read_table(params.data.raw), contract, params.split.test_size, params.split.seed
        )
        write_split(train, test, params.data.processed_dir)
        typer.echo(f"train {len(train)} rows, test {len(test)} rows in {params.data.processed_dir}")


@app.command()
def train(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Fit the model on the train set and log it, its data and lineage to MLflow."""
    with expected_errors():
        from .config import load_params
        from .features import TRAIN_FILE, read_split
        from .schema import Contract
        from .tracking import file_md5, file_modified
        from .train import train_and_log

        params = load_params(params_file)
        contract = Contract.load(params.data.contract)
        table = read_split(params.data.processed_dir, TRAIN_FILE)
        raw = params.data.raw
        run = train_and_log(
            table, contract, params, data_hash=file_md5(raw), data_timestamp=file_modified(raw)
        )
        run.write(TRAIN_RUN)
        typer.echo(f"MLflow run {run.run_id}: model {run.model_uri}")


@app.command()
def evaluate(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Score the trained model on the test set: metrics, plots and fairness reports."""
    with expected_errors():
        import mlflow

        from .config import load_params
        from .evaluate import (
            compute_metrics,
            fairness_report,
            plot_data,
            predict,
            write_json,
            write_plots,
        )
        from .explain import EXPLANATIONS_FILE, global_explanation
        from .features import TEST_FILE, read_split
        from .schema import Contract
        from .tracking import use_experiment
        from .train import TrainingRun

        params = load_params(params_file)
        contract = Contract.load(params.data.contract)
        run = TrainingRun.read(TRAIN_RUN)
        test = read_split(params.data.processed_dir, TEST_FILE)
        use_experiment(params.tracking.experiment_name)
        model = mlflow.sklearn.load_model(run.model_uri)
        predictions = predict(model, test, contract, params.evaluate.threshold)
        metrics = compute_metrics(predictions, contract)
        fairness = fairness_report(predictions, test, contract, params.fairness)
        write_json(metrics, REPORTS / "metrics.json")
        write_json(fairness, REPORTS / "fairness.json")
        write_plots(plot_data(predictions, contract), REPORTS / "plots")
        explanation = global_explanation(model, test, contract, params)
        write_json(explanation, REPORTS / EXPLANATIONS_FILE)
        with mlflow.start_run(run_id=run.run_id):
            mlflow.log_metrics(metrics)
            mlflow.log_dict(fairness, "fairness.json")
            mlflow.log_dict(explanation, EXPLANATIONS_FILE)
        typer.echo(", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


@app.command()
def register(params_file: ParamsOption = Path("params.yaml")) -> None:
    """Register the model, run the promotion gate and record the decision.

    A rejected model is a normal outcome (exit 0): it stays `challenger`, the champion is
    untouched, and the decision is in reports/audit.jsonl and reports/decision.json.
    """
    with expected_errors():
        import json

        from .config import load_params
        from .explain import EXPLANATIONS_FILE
        from .features import TEST_FILE, read_split
        from .registry import register_and_gate
        from .schema import Contract
        from .train import TrainingRun

        params = load_params(params_file)
        contract = Contract.load(params.data.contract)
        decision = register_and_gate(
            TrainingRun.read(TRAIN_RUN),
            json.loads((REPORTS / "metrics.json").read_text()),
            json.loads((REPORTS / "fairness.json").read_text()),
            json.loads((REPORTS / EXPLANATIONS_FILE).read_text()),
            read_split(params.data.processed_dir, TEST_FILE),
            contract,
            params,
            REPORTS,
        )
        typer.echo(f"{decision.model} v{decision.version}: {decision.outcome}")
        for reason in decision.reasons:
            typer.echo(f"  - {reason}")


@app.command("compare-metrics")
def compare_metrics(
    params_file: ParamsOption = Path("params.yaml"),
    base: Annotated[
        str, typer.Option(help="Git revision to compare with (a pull request's base branch).")
    ] = "HEAD",
    diff_file: Annotated[
        Path | None, typer.Option(help="Read this `dvc metrics diff --json` output instead.")
    ] = None,
    summary: Annotated[
        Path | None, typer.Option(envvar="GITHUB_STEP_SUMMARY", help="Also append the table here.")
    ] = None,
) -> None:
    """Metrics against BASE (dvc metrics diff) as Markdown; exit 1 if the gate's metric got worse.

    "Worse" is the promotion gate's rule: its primary metric lost more than its tolerance.
    """
    from .compare import CompareError, by_the_gate, dvc_metrics_diff, markdown, parse_diff

    with expected_errors(CompareError):
        from .config import load_params

        params = load_params(params_file)
        if diff_file is None:
            document = dvc_metrics_diff(base)
        else:
            document = parse_diff(diff_file.read_text(), str(diff_file))
        comparison = by_the_gate(document, params, base)
        table = markdown(comparison)
        typer.echo(table)
        if summary is not None:
            with summary.open("a", encoding="utf-8") as out:
                out.write(table + "\n")
        if comparison.worse:
            raise typer.Exit(1)


@app.command("export-model")
def export_model(
    params_file: ParamsOption = Path("params.yaml"),
    dest: Annotated[Path, typer.Option("--dest", "--to", help="Destination folder.")] = Path(
        "models/champion"
    ),
    version: Annotated[
        int | None,
        typer.Option(help="This registry version instead of the champion (a canary).", min=1),
    ] = None,
    expect_version: Annotated[
        int | None,
        typer.Option(help="Refuse, writing nothing, unless the champion is this version.", min=1),
    ] = None,
    github_output: Annotated[
        Path | None,
        typer.Option(envvar="GITHUB_OUTPUT", help="Also append `version=N` here."),
    ] = None,
) -> None:
    """Export the champion (or --version N) for serving: model/, schema.yaml, metadata.json,
    model.treelite, model-<hash>.so."""
    with expected_errors():
        from .config import load_params
        from .export import TREELITE_SCORER, ExportError, export_champion
        from .features import TEST_FILE
        from .trees import COMPILED

        params = load_params(params_file)
        try:
            metadata = export_champion(
                params.registry.model_name,
                dest,
                params.data.processed_dir / TEST_FILE,
                version,
                expect_version,
            )
        except ExportError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"exported {metadata['name']} v{metadata['version']} to {dest}")
        if github_output is not None:
            with github_output.open("a", encoding="utf-8") as outputs:
                outputs.write(f"version={metadata['version']}\n")
        if metadata["scorer"] != TREELITE_SCORER:
            typer.echo(
                f"warning: no treelite fast path, serving scores with {metadata['scorer']}",
                err=True,
            )
        elif metadata["compiled"] != COMPILED:
            typer.echo(
                f"warning: the trees are not compiled ({metadata['compiled']}); serving scores "
                "them with treelite's interpreter, ~10x slower on large batches",
                err=True,
            )

{%- if cookiecutter.include_serving %}


@app.command()
def predict(
    input_path: Annotated[
        Path, typer.Argument(help="CSV or Parquet file (a folder of them with --engine spark).")
    ],
    output_path: Annotated[
        Path, typer.Argument(help="Parquet file to write (a folder with --engine spark).")
    ],
    model_dir: Annotated[
        Path, typer.Option(help="Exported model folder (make export-model).")
    ] = Path("models/champion"),
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where refused rows go, with the reason; default OUT's name + -rejects."),
    ] = None,
{%- if cookiecutter.scale_out == 'spark' %}
    engine: EngineOption = Engine.LOCAL,
    master: MasterOption = None,
{%- endif %}
) -> None:
    """Score a file with the exported model: inputs + prediction (+ probabilities) as Parquet.

    Rows the service's contract checks refuse are not scored: they go to the rejects output
    with the reason, as the API's 422 would give it (`serving.unknown_categories` applies)."""
    with expected_errors():
        from .serving.batch import predict_file, rejects_path
        from .serving.model_store import ModelLoadError
        from .serving.settings import SettingsError, load_settings

        refused_to = rejects or rejects_path(output_path)
        try:
            policy = load_settings().unknown_categories
{%- if cookiecutter.scale_out == 'spark' %}
            if engine is Engine.SPARK:
                from .spark.scoring import predict_on_spark

                rows, refused = predict_on_spark(
                    str(input_path), str(output_path), str(refused_to), model_dir, policy, master
                )
            else:
                rows, refused = predict_file(input_path, output_path, model_dir, policy, refused_to)
{%- else %}
            rows, refused = predict_file(input_path, output_path, model_dir, policy, refused_to)
{%- endif %}
        except (ModelLoadError, SettingsError{% if cookiecutter.scale_out == 'spark' %}, SparkError{% endif %}) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"scored {rows} rows with {model_dir} into {output_path}")
        if refused:
            typer.echo(f"refused {refused} rows (the reason per row) into {refused_to}", err=True)


@app.command("make-key")
def make_key(
    role: Annotated[str, typer.Option(help="predict, admin or metrics.")] = "predict",
) -> None:
    """A new API key for the service, shown once, and its line for API_KEYS_FILE (a hash)."""
    from .serving.auth import KeyRole
    from .serving.auth import make_key as new_key

    if role not in set(KeyRole):
        typer.echo(f"error: --role {role}: not one of {', '.join(KeyRole)}", err=True)
        raise typer.Exit(1)
    key, line = new_key(KeyRole(role))
    typer.echo(f"key (give it to the client; it is not stored anywhere): {key}")
    typer.echo(f"line for API_KEYS_FILE: {line}")
{%- endif %}
{%- if cookiecutter.include_serving %}


# smoke-test, canary-verdict, consume: what CI/CD and operators run against a service.
app.add_typer(delivery_app)
{%- endif %}
{%- if cookiecutter.include_monitoring %}


# monitor, compact-log, retrain, webhook: the loop after serving (see monitoring/).
app.add_typer(monitoring_app)
{%- endif %}
