"""v_wage_monthly without the month-by-point join: the wage board at a province's size

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-07 03:00:00

0006's view paired every month with every monitoring point and looked up each pair's
report: 36 months x 10,000 points = 360,000 index lookups for every panel, 0.6 s for the
whole view and 0.8-2 s p95 for a wage panel at Hunan's size (bench/province.py). The
same rows come from two aggregates instead: points expected per county and month (a
running count of the months points joined in) and reports per county and month (one
pass over wage_reports). Same columns, types and values (sums of floats may differ in
the last digits, from the order of addition). The old definition is put back on
downgrade.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from alembic import op

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

V_WAGE_MONTHLY = """
    WITH months AS (
        SELECT DISTINCT period FROM wage_reports
    ),
    first_reports AS (
        SELECT point_id, min(period) AS first_period
        FROM wage_reports
        GROUP BY point_id
    ),
    -- A point is expected from the month it joined (its first report, or the month it
    -- was registered if it never reported) on: how many joined per county and month.
    joins AS (
        SELECT p.region_code,
               CASE WHEN f.first_period IS NOT NULL
                         AND f.first_period < {local_month:p.created_at}
                    THEN f.first_period
                    ELSE {local_month:p.created_at} END AS joined,
               count(*) AS points
        FROM monitoring_points p
        LEFT JOIN first_reports f ON f.point_id = p.point_id
        GROUP BY 1, 2
    ),
    expected AS (
        SELECT m.period, j.region_code, CAST(sum(j.points) AS BIGINT) AS points_expected
        FROM months m
        JOIN joins j ON j.joined <= m.period
        GROUP BY m.period, j.region_code
    ),
    -- Every report counts: its month is never before its point joined.
    reported AS (
        SELECT w.period, p.region_code,
               count(*) AS points_reporting,
               sum(w.frontline_headcount) AS frontline_workers,
               sum(w.avg_frontline_wage * w.frontline_headcount) AS wage_bill,
               count(CASE WHEN w.arrears_workers > 0 OR w.arrears_amount > 0 THEN 1 END)
                   AS arrears_points,
               sum(w.arrears_workers) AS arrears_workers,
               sum(w.arrears_amount) AS arrears_amount
        FROM wage_reports w
        JOIN monitoring_points p ON p.point_id = w.point_id
        GROUP BY w.period, p.region_code
    )
    SELECT {day_start:e.period} AS period,
           {month_label:e.period} AS month,
           e.region_code,
           r.name AS county,
           e.points_expected,
           coalesce(x.points_reporting, 0) AS points_reporting,
           e.points_expected - coalesce(x.points_reporting, 0) AS points_not_reporting,
           coalesce(x.frontline_workers, 0) AS frontline_workers,
           -- weighted by frontline headcount, so a county's average is its workers'
           x.wage_bill / nullif(coalesce(x.frontline_workers, 0), 0) AS avg_frontline_wage,
           coalesce(x.arrears_points, 0) AS arrears_points,
           coalesce(x.arrears_workers, 0) AS arrears_workers,
           coalesce(x.arrears_amount, 0) AS arrears_amount
    FROM expected e
    LEFT JOIN reported x ON x.period = e.period AND x.region_code = e.region_code
    JOIN regions r ON r.code = e.region_code
"""


def _views() -> Any:
    return importlib.import_module("monitor.migrations.versions.0006_views")


def _dialect() -> str:
    return "postgresql" if op.get_bind().dialect.name == "postgresql" else "sqlite"


def view_sql(dialect: str) -> str:
    return str(_views()._render(V_WAGE_MONTHLY, dialect))


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_wage_monthly")
    op.execute(f"CREATE VIEW v_wage_monthly AS {view_sql(_dialect())}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_wage_monthly")
    old = _views().view_sql("v_wage_monthly", _dialect())
    op.execute(f"CREATE VIEW v_wage_monthly AS {old}")
