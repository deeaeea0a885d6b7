"""analyst views: v_wage_monthly, v_petitions_daily, v_risk_latest, v_alerts, v_regions

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-01 10:00:00

The views Grafana and analysts read (interfaces §6). Each has a time column and
region_code, and means the same on PostgreSQL and SQLite, so the SQL is written once
with the few dialect-specific expressions filled in per dialect:

- time columns are instants (timestamptz on PostgreSQL; on SQLite the naive-UTC text
  'YYYY-MM-DD HH:MM:SS.ffffff' that `UTCDateTime` stores), so Grafana's `$__timeFilter`
  compares like with like. A local day or month becomes the instant it starts in China
  (UTC+8, no daylight saving since 1991): SQLite has no time zone database, so both
  dialects use the fixed offset rather than 'Asia/Shanghai' to stay identical;
- personal data (petitioner name/phone, informant ids, who acknowledged) is never
  selected (interfaces §7).

Views are not tables: alembic's autogenerate does not compare them, so
`test_migrations_match_the_models` is unaffected. A later migration that drops or
retypes a column read here, or that makes SQLite rebuild one of these tables (batch
drop/alter column; adding a column or an index does not rebuild), must drop the views
first and create them again afterwards: SQLite refuses to rename the rebuilt table while
a view names it. This module's `downgrade()` and `upgrade()` do exactly that
(`importlib.import_module("monitor.migrations.versions.0006_views")`). Changing a view
means a new migration that re-creates it: `v_wage_monthly` is 0015's since then, so a
migration that re-creates the views after 0015 takes that one from 0015
(`view_sql(dialect)`), not from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The only dialect-specific expressions; everything else is shared SQL.
FRAGMENTS: dict[str, dict[str, str]] = {
    "postgresql": {
        # The instant a local (UTC+8) calendar day starts.
        "day_start": "(({0})::timestamp - interval '8 hours') AT TIME ZONE 'UTC'",
        # The local (UTC+8) month an instant falls in, as its first day.
        "local_month": "date_trunc('month', ({0}) AT TIME ZONE 'UTC' + interval '8 hours')::date",
        "month_label": "to_char({0}, 'YYYY-MM')",
        # Exact to the microsecond (numeric).
        "seconds": "extract(epoch from ({1}) - ({0}))",
        "top_factors": """(
            SELECT string_agg(t.txt, '；' ORDER BY t.rank)
            FROM (
                SELECT e.value ->> 'text' AS txt,
                       row_number() OVER (
                           ORDER BY CASE WHEN jsonb_typeof(e.value -> 'weight') = 'number'
                                         THEN (e.value ->> 'weight')::float8 ELSE 0 END DESC,
                                    e.ordinality
                       ) AS rank
                FROM jsonb_array_elements(
                         CASE WHEN jsonb_typeof({0}) = 'array' THEN {0} ELSE '[]'::jsonb END
                     ) WITH ORDINALITY AS e(value, ordinality)
            ) t
            WHERE t.rank <= 3
        )""",
    },
    "sqlite": {
        "day_start": "(datetime({0}, '-8 hours') || '.000000')",
        "local_month": "date({0}, '+8 hours', 'start of month')",
        "month_label": "strftime('%Y-%m', {0})",
        # julianday() arithmetic loses tens of microseconds; whole seconds from
        # strftime('%s') plus the stored '.ffffff' fraction is exact, like PostgreSQL.
        "seconds": (
            "((strftime('%s', {1}) - strftime('%s', {0}))"
            " + (CAST(substr({1}, 20) AS REAL) - CAST(substr({0}, 20) AS REAL)))"
        ),
        # group_concat keeps the order of its (ordered, limited) subquery.
        "top_factors": """(
            SELECT group_concat(t.txt, '；')
            FROM (
                SELECT json_extract(e.value, '$.text') AS txt
                FROM json_each(
                         CASE WHEN json_type({0}) = 'array' THEN {0} ELSE '[]' END
                     ) AS e
                ORDER BY CASE WHEN json_type(e.value, '$.weight') IN ('integer', 'real')
                              THEN json_extract(e.value, '$.weight') ELSE 0 END DESC,
                         e.key
                LIMIT 3
            ) t
        )""",
    },
}

VIEWS: dict[str, str] = {
    # The lookup the county variable of every board reads.
    "v_regions": """
        SELECT code AS region_code, name, tier, parent_code
        FROM regions
    """,
    # One row per county and reported month. A point is expected to report from the
    # month it joined (its first report, or the month it was registered if it never
    # reported) on; a point that falls silent keeps counting as not reporting, which is
    # the precursor the wage board shows.
    "v_wage_monthly": """
        WITH months AS (
            SELECT DISTINCT period FROM wage_reports
        ),
        first_reports AS (
            SELECT point_id, min(period) AS first_period
            FROM wage_reports
            GROUP BY point_id
        ),
        monitored AS (
            SELECT p.point_id, p.region_code,
                   CASE WHEN f.first_period IS NOT NULL
                             AND f.first_period < {local_month:p.created_at}
                        THEN f.first_period
                        ELSE {local_month:p.created_at} END AS joined
            FROM monitoring_points p
            LEFT JOIN first_reports f ON f.point_id = p.point_id
        ),
        monthly AS (
            SELECT m.period, mo.region_code,
                   count(*) AS points_expected,
                   count(w.report_id) AS points_reporting,
                   coalesce(sum(w.frontline_headcount), 0) AS frontline_workers,
                   sum(w.avg_frontline_wage * w.frontline_headcount) AS wage_bill,
                   count(CASE WHEN w.arrears_workers > 0 OR w.arrears_amount > 0 THEN 1 END)
                       AS arrears_points,
                   coalesce(sum(w.arrears_workers), 0) AS arrears_workers,
                   coalesce(sum(w.arrears_amount), 0) AS arrears_amount
            FROM months m
            JOIN monitored mo ON mo.joined <= m.period
            LEFT JOIN wage_reports w ON w.point_id = mo.point_id AND w.period = m.period
            GROUP BY m.period, mo.region_code
        )
        SELECT {day_start:x.period} AS period,
               {month_label:x.period} AS month,
               x.region_code,
               r.name AS county,
               x.points_expected,
               x.points_reporting,
               x.points_expected - x.points_reporting AS points_not_reporting,
               x.frontline_workers,
               -- weighted by frontline headcount, so a county's average is its workers'
               x.wage_bill / nullif(x.frontline_workers, 0) AS avg_frontline_wage,
               x.arrears_points,
               x.arrears_workers,
               x.arrears_amount
        FROM monthly x
        JOIN regions r ON r.code = x.region_code
    """,
    # One row per local day, region, channel and category. A collective petition
    # (集体访) involves 5 people or more (interfaces §2).
    "v_petitions_daily": """
        SELECT {day_start:p.received_date} AS day,
               p.received_date AS local_date,
               p.region_code,
               r.name AS county,
               p.channel,
               p.category,
               count(*) AS petitions,
               sum(p.people_involved) AS people,
               count(CASE WHEN p.people_involved >= 5 THEN 1 END) AS collective_petitions,
               coalesce(sum(CASE WHEN p.people_involved >= 5 THEN p.people_involved END), 0)
                   AS collective_people,
               count(p.over_level) AS over_level_petitions
        FROM petitions p
        JOIN regions r ON r.code = p.region_code
        GROUP BY p.received_date, p.region_code, r.name, p.channel, p.category
    """,
    # The newest score of every monitoring point (risk_scores keeps the history).
    "v_risk_latest": """
        SELECT rs.entity_id AS point_id,
               coalesce(mp.name, rs.entity_id) AS name,
               rs.region_code,
               coalesce(r.name, rs.region_code) AS county,
               mp.industry,
               rs.score,
               rs.level,
               {top_factors:rs.factors} AS top_factors,
               rs.as_of,
               rs.scored_at
        FROM (
            SELECT s.*,
                   row_number() OVER (
                       PARTITION BY s.entity_id ORDER BY s.scored_at DESC, s.id DESC
                   ) AS newest
            FROM risk_scores s
            WHERE s.entity_type = 'point'
        ) rs
        LEFT JOIN monitoring_points mp ON mp.point_id = rs.entity_id
        LEFT JOIN regions r ON r.code = rs.region_code
        WHERE rs.newest = 1
    """,
    # One row per alert with how fast it was handled; escalations come from the audit
    # log (AlertEscalated events), since tier_reached alone cannot tell an escalation
    # from a level I alert that notified every tier at once.
    "v_alerts": """
        SELECT a.id AS alert_id,
               a.created_at,
               a.kind,
               a.level,
               a.status,
               a.region_code,
               coalesce(r.name, a.region_code) AS county,
               a.point_id,
               a.title,
               a.people_involved,
               a.tier_reached,
               a.acknowledged_at,
               {seconds:a.created_at,a.acknowledged_at} AS seconds_to_acknowledge,
               a.resolved_at,
               {seconds:a.created_at,a.resolved_at} AS seconds_to_resolve,
               coalesce(e.escalations, 0) AS escalations,
               e.last_escalated_at
        FROM alerts a
        LEFT JOIN regions r ON r.code = a.region_code
        LEFT JOIN (
            SELECT alert_id, count(*) AS escalations, max(at) AS last_escalated_at
            FROM alert_events
            WHERE event = 'AlertEscalated'
            GROUP BY alert_id
        ) e ON e.alert_id = a.id
    """,
}


def _render(sql: str, dialect: str) -> str:
    """Fill `{name:arg1,arg2}` placeholders with the dialect's fragment."""
    fragments = FRAGMENTS[dialect]
    out: list[str] = []
    rest = sql
    while "{" in rest:
        head, _, tail = rest.partition("{")
        spec, _, rest = tail.partition("}")
        name, _, args = spec.partition(":")
        out.append(head)
        out.append(fragments[name].format(*args.split(",")))
    out.append(rest)
    return "".join(out)


def view_sql(name: str, dialect: str) -> str:
    return _render(VIEWS[name], dialect)


def upgrade() -> None:
    dialect = "postgresql" if op.get_bind().dialect.name == "postgresql" else "sqlite"
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"CREATE VIEW {name} AS {view_sql(name, dialect)}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
