"""handling: records on alerts (核实/续报/批示/答复/终报), their deadlines, and the
verification of informants' reports

Revision ID: 0012
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
OPEN = "met_at IS NULL AND cancelled_at IS NULL AND missed_at IS NULL"

# v_alerts (0006) gains the handling: the first verify record, the final report, and the
# deadlines missed, for the boards' handling time by county. The columns are appended;
# the old definition is restored on downgrade.
SECONDS = {
    "postgresql": "extract(epoch from ({1}) - ({0}))",
    "sqlite": (
        "((strftime('%s', {1}) - strftime('%s', {0}))"
        " + (CAST(substr({1}, 20) AS REAL) - CAST(substr({0}, 20) AS REAL)))"
    ),
}
V_ALERTS = """
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
           {ack} AS seconds_to_acknowledge,
           a.resolved_at,
           {resolve} AS seconds_to_resolve,
           coalesce(e.escalations, 0) AS escalations,
           e.last_escalated_at{handling}
    FROM alerts a
    LEFT JOIN regions r ON r.code = a.region_code
    LEFT JOIN (
        SELECT alert_id, count(*) AS escalations, max(at) AS last_escalated_at
        FROM alert_events
        WHERE event = 'AlertEscalated'
        GROUP BY alert_id
    ) e ON e.alert_id = a.id{joins}
"""
HANDLING_COLUMNS = """,
           h.verified_at,
           {verify} AS seconds_to_verify,
           h.final_at,
           {final} AS seconds_to_final,
           coalesce(d.missed, 0) AS missed_deadlines"""
HANDLING_JOINS = """
    LEFT JOIN (
        SELECT alert_id,
               min(CASE WHEN kind = 'verify' THEN created_at END) AS verified_at,
               min(CASE WHEN kind = 'final' THEN created_at END) AS final_at
        FROM handling_records
        GROUP BY alert_id
    ) h ON h.alert_id = a.id
    LEFT JOIN (
        SELECT alert_id, count(*) AS missed
        FROM handling_deadlines
        WHERE missed_at IS NOT NULL
        GROUP BY alert_id
    ) d ON d.alert_id = a.id"""


def v_alerts(dialect: str, *, handling: bool) -> str:
    seconds = SECONDS[dialect]
    columns = joins = ""
    if handling:
        columns = HANDLING_COLUMNS.format(
            verify=seconds.format("a.created_at", "h.verified_at"),
            final=seconds.format("a.created_at", "h.final_at"),
        )
        joins = HANDLING_JOINS
    return V_ALERTS.format(
        ack=seconds.format("a.created_at", "a.acknowledged_at"),
        resolve=seconds.format("a.created_at", "a.resolved_at"),
        handling=columns,
        joins=joins,
    )


def _dialect() -> str:
    return "postgresql" if op.get_bind().dialect.name == "postgresql" else "sqlite"


def upgrade() -> None:
    # Nullable columns: SQLite adds them without rebuilding the table (views stay valid).
    op.add_column("informant_reports", sa.Column("verification", sa.String(length=12)))
    op.add_column("informant_reports", sa.Column("verified_at", sa.DateTime(timezone=True)))

    op.create_table(
        "handling_records",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("fields", JSON, nullable=True),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_handling_records_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handling_records")),
    )
    op.create_index(op.f("ix_handling_records_alert_id"), "handling_records", ["alert_id"])

    op.create_table(
        "handling_deadlines",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_handling_deadlines_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handling_deadlines")),
    )
    op.create_index(op.f("ix_handling_deadlines_alert_id"), "handling_deadlines", ["alert_id"])
    op.create_index(
        "ix_handling_deadlines_open",
        "handling_deadlines",
        ["due_at"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.execute("DROP VIEW IF EXISTS v_alerts")
    op.execute(f"CREATE VIEW v_alerts AS {v_alerts(_dialect(), handling=True)}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_alerts")
    # On SQLite the old view is not put back: a view over `alerts` makes the next
    # downgrade's table rebuild (0008, batch mode) fail, and below 0012 nothing needs it
    # until 0006 drops the views anyway. PostgreSQL alters tables in place.
    if _dialect() == "postgresql":
        op.execute(f"CREATE VIEW v_alerts AS {v_alerts('postgresql', handling=False)}")
    op.drop_index("ix_handling_deadlines_open", table_name="handling_deadlines")
    op.drop_index(op.f("ix_handling_deadlines_alert_id"), table_name="handling_deadlines")
    op.drop_table("handling_deadlines")
    op.drop_index(op.f("ix_handling_records_alert_id"), table_name="handling_records")
    op.drop_table("handling_records")
    with op.batch_alter_table("informant_reports") as batch:
        batch.drop_column("verified_at")
        batch.drop_column("verification")
