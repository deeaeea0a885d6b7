"""`labormon simulate`, `labormon score`, `labormon evaluate` and `labormon evaluate-text`."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    err,
    fail,
    open_context,
    os_reason,
    out,
    run,
    settings_from,
)
from monitor.safetext import SafeWriter


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
    app.command("score")(score_command)
    app.command("evaluate")(evaluate_command)
    app.command("evaluate-text")(evaluate_text_command)


def evaluate_text_command(
    file: Annotated[
        Path, typer.Argument(help="A labelled CSV: columns text and category (date optional).")
    ],
    hold_out_from: Annotated[
        str | None,
        typer.Option(
            "--hold-out-from",
            help="Test only rows dated this day (YYYY-MM-DD) or later, with a model trained "
            "on the shipped real messages dated before it: held out by time.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The petition-category classifier on a labelled CSV: accuracy, macro-F1,
    precision and recall per category and the confusion matrix.

    Reads files only: --config and --db are accepted (and checked) like everywhere else."""
    from detectors.category import evaluate_text

    settings_from(config, db)
    if hold_out_from is not None:
        try:
            date.fromisoformat(hold_out_from)
        except ValueError:
            fail(f"--hold-out-from must be a day written YYYY-MM-DD, not {hold_out_from!r}")
    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        result = evaluate_text(file, hold_out_from=hold_out_from)
    except (ValueError, UnicodeDecodeError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{file}: {os_reason(exc)}")
    if json_out:
        out.print_json(
            data={
                "messages": result.test_size,
                "accuracy": round(result.accuracy, 4),
                "macro_f1": round(result.macro_f1, 4),
                "per_category": result.per_class,
                "labels": result.labels,
                "confusion": result.confusion,
                "note": result.note,
            }
        )
        return
    out.print(result.format(), highlight=False)


def _month(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        fail(f"--start must be a month written YYYY-MM, not {text!r}")


def simulate_command(
    points: Annotated[
        int, typer.Option("--points", min=1, max=1_000_000, help="Monitoring points.")
    ],
    months: Annotated[int, typer.Option("--months", min=1, max=240, help="Months to simulate.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the data set.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 1,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="GB/T 2260 code of the region: a city (default 430900 Yiyang), a province "
            "(430000 Hunan: its 14 cities and 122 counties) or a county.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First month YYYY-MM (default: so that the data ends last month and can be "
            "imported today).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """A synthetic data set of a region (default: the demo city) with ground truth
    (incidents.csv).

    Writes files only: --config and --db are accepted (and checked) like everywhere else."""
    from monitor.regions import DEMO_CITY, UnknownRegion, catalogue
    from monitor.simulator import default_start, write_dataset

    settings_from(config, db)
    code = region or DEMO_CITY
    try:
        catalogue().get(code)
    except UnknownRegion as exc:
        fail(f"--region: {exc}")
    first = _month(start) or default_start(months)
    if out_dir.exists() and not out_dir.is_dir():
        fail(f"--out {out_dir} exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out: cannot create {os_reason(exc, out_dir)}")
    started = time.perf_counter()
    try:
        summary = write_dataset(
            out_dir, points=points, months=months, seed=seed, start=first, region=code
        )
    except OSError as exc:
        fail(f"--out: cannot write {os_reason(exc, out_dir)}")
    if json_out:
        print(json.dumps(summary.as_dict()))
        return
    err.print(
        f"simulated {catalogue().name(code)} ({code}): {summary.points} points x "
        f"{summary.months} months "
        f"({summary.first_period:%Y-%m} .. {summary.last_period:%Y-%m}) in "
        f"{time.perf_counter() - started:.1f}s: {summary.wage_reports} wage reports, "
        f"{summary.petitions} petitions, {summary.informant_reports} informant reports, "
        f"{summary.incidents} incidents -> {out_dir}"
    )


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of must be a date YYYY-MM-DD, not {text!r}")


def score_command(
    as_of: Annotated[
        str, typer.Option("--as-of", help="Score with data up to this day (YYYY-MM-DD).")
    ],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="CSV file (default: standard output).")
    ] = None,
    counties: Annotated[
        bool, typer.Option("--counties", help="Also write the counties (entity column).")
    ] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Risk of every monitoring point as of DATE, from data up to DATE only:
    point_id,score,level,factors."""
    from detectors.scoring import score
    from monitor.season import day_number

    day = _as_of(as_of)
    settings = settings_from(config, db)

    async def body() -> Any:
        from detectors.load import load_panel
        from detectors.panel import PanelView
        from detectors.service import scoring_policy

        async with open_context(settings) as ctx:
            panel = await load_panel(
                ctx.db,
                as_of=day,
                zone=settings.organisation.zone,
                reliability_prior=settings.handling.reliability_prior,
                reliability_prior_weight=settings.handling.reliability_prior_weight,
            )
            model, method = await _model_for(ctx, day)
            view = PanelView(panel, day_number(day))
            table = score(view, model, scoring_policy(settings.detectors))
            return table, method

    if out_file is not None and out_file.parent and not out_file.parent.exists():
        fail(f"--out: directory {out_file.parent} does not exist")
    if out_file is not None and out_file.is_dir():
        fail(f"--out {out_file} is a directory")
    table, method = run(body)
    try:
        fh = out_file.open("w", newline="", encoding="utf-8") if out_file else sys.stdout
    except OSError as exc:
        fail(f"--out: cannot write {os_reason(exc, out_file)}")
    try:
        writer = SafeWriter(csv.writer(fh))
        header = ["point_id", "score", "level", "factors"]
        writer.writerow(([*header, "entity"]) if counties else header)
        for i, point_id in enumerate(table.point_ids):
            row = [point_id, f"{table.score[i]:.1f}", table.level(i) or "", table.factor_text(i, 5)]
            writer.writerow([*row, "point"] if counties else row)
        if counties:
            for j, code in enumerate(table.counties):
                text = "；".join(f.text for f in table.county_factors[j])
                writer.writerow(
                    [
                        code,
                        f"{table.county_score[j]:.1f}",
                        table.county_level(j) or "",
                        text,
                        "county",
                    ]
                )
    finally:
        if out_file:
            fh.close()
    levels = sum(1 for i in range(len(table.point_ids)) if table.level(i))
    err.print(
        f"scored {len(table.point_ids)} points as of {day} ({method}); {levels} at a level"
        + (f" -> {out_file}" if out_file else "")
    )


async def _model_for(ctx: Any, day: date) -> tuple[Any, str]:
    """A forecaster that knows nothing after `day`: a stored one trained by then, else
    one trained now on the history up to `day`, else none (rules and anomalies)."""
    from detectors import forecast
    from detectors.load import load_panel
    from detectors.persist import latest_model
    from monitor.season import day_number

    async with ctx.db.read() as conn:
        stored = await latest_model(conn, trained_by=day)
    if stored is not None and stored.forecaster is not None:
        return stored.forecaster, f"stored forecaster #{stored.id}"
    history = await load_panel(ctx.db, zone=ctx.settings.organisation.zone)
    policy = forecast.TrainingPolicy(min_incidents=ctx.settings.detectors.min_history_incidents)
    model = forecast.train(history, day_number(day), policy)
    if model is not None:
        return model, f"forecaster trained on history up to {day}"
    return None, "rules and anomalies (too little history for a forecaster)"


def evaluate_command(
    directory: Annotated[
        Path, typer.Argument(help="A data set with incidents.csv (labormon simulate).")
    ],
    retrain_every: Annotated[
        int, typer.Option("--retrain-every", min=1, max=24, help="Months between retrainings.")
    ] = 3,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the figures as JSON.")
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Import DIR (into a temporary SQLite database unless --db is given) and backtest:
    AUC, precision at the top 5 %, median lead time, false alerts per 1,000 points per
    month, for labormon and for the status quo (reported arrears months alone)."""
    if not directory.is_dir():
        fail(f"{directory} is not a directory")
    if not (directory / "incidents.csv").is_file():
        fail(f"{directory}: no incidents.csv (ground truth) here; make one with labormon simulate")
    with tempfile.TemporaryDirectory(prefix="labormon-evaluate-") as tmp:
        url = db or f"sqlite:///{Path(tmp) / 'evaluate.db'}"
        settings = settings_from(config, url)
        result, imported, classifier = run(lambda: _evaluate(settings, directory, retrain_every))
    figures = result.as_dict() | {"import": imported, "classifier_on_dataset": classifier}
    if out_file is not None:
        try:
            out_file.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
        except OSError as exc:
            fail(f"--out: cannot write {os_reason(exc, out_file)}")
    if json_out:
        print(json.dumps(figures, ensure_ascii=False))
        return
    table = Table("", "labormon", "rules only", "baseline", title=f"backtest of {directory}")
    rows = (
        ("AUC", "auc", "{:.3f}"),
        ("precision at top 5 %", "precision_top5", "{:.3f}"),
        ("median lead time (days)", "median_lead_days", "{:.0f}"),
        ("incidents alerted before", "detection_rate", "{:.0%}"),
        ("false alerts / 1,000 points / month", "false_alerts_per_1000_point_months", "{:.1f}"),
        ("alerts / 1,000 points / month", "alerts_per_1000_point_months", "{:.1f}"),
    )
    for label, key, fmt in rows:
        table.add_row(
            label,
            fmt.format(getattr(result.labormon, key)),
            fmt.format(getattr(result.rules_only, key)),
            fmt.format(getattr(result.baseline, key)),
        )
    out.print(table)
    out.print(
        f"{result.points} points, {len(result.as_of)} as-of dates "
        f"({result.as_of[0]} .. {result.as_of[-1]}), horizon 90 days, {result.incidents} "
        f"incidents, forecaster used on {result.forecaster_dates} dates; petition "
        f"classifier on the data set's categorised petitions: macro-F1 "
        f"{classifier['macro_f1']:.3f} ({classifier['petitions']} petitions)"
    )


async def _evaluate(settings: Any, directory: Path, retrain_every: int) -> Any:
    from detectors.backtest import backtest
    from detectors.load import load_panel
    from detectors.sources import attach_truth, read_incidents
    from ingest.files import FileImporter

    async with open_context(settings) as ctx:
        started = time.perf_counter()
        report = await FileImporter(ctx.store, zone=settings.organisation.zone).run(directory)
        imported = {
            "rows": sum(k.rows for k in report.kinds.values()),
            "stored": report.stored,
            "rejected": report.rejected,
            "seconds": round(time.perf_counter() - started, 1),
        }
        err.print(
            f"imported {imported['stored']} records ({imported['rejected']} rejected) "
            f"in {imported['seconds']}s; backtesting ..."
        )
        panel = await load_panel(ctx.db, zone=settings.organisation.zone)
        attach_truth(panel, read_incidents(directory / "incidents.csv"))
        classifier = await _classifier_on_dataset(ctx)

    def progress(when: date, method: str) -> None:
        if err.is_terminal:
            err.print(f"  as of {when}: {method}")

    result = backtest(panel, retrain_every=retrain_every, progress=progress)
    return result, imported, classifier


async def _classifier_on_dataset(ctx: Any) -> dict[str, Any]:
    """The category classifier against the categories petitioners' sources gave."""
    from sklearn.metrics import f1_score
    from sqlalchemy import select

    from detectors.category import default_model
    from monitor.models import Petition

    async with ctx.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(Petition.summary, Petition.category).where(
                    Petition.category_inferred.is_(False)
                )
            )
        ).all()
    if not rows:
        return {"petitions": 0, "macro_f1": float("nan")}
    model = default_model()
    truth = [r[1] for r in rows]
    predicted = [model.predict(r[0]) for r in rows]
    return {
        "petitions": len(rows),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4),
    }
