"""handling: records on alerts (核实/续报/批示/答复/终报), their deadlines, and the
verification of informants' reports

Revision ID: 0012
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
OPEN = "met_at IS NULL AND cancelled_at IS NULL AND missed_at IS NULL"


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


def downgrade() -> None:
    op.drop_index("ix_handling_deadlines_open", table_name="handling_deadlines")
    op.drop_index(op.f("ix_handling_deadlines_alert_id"), table_name="handling_deadlines")
    op.drop_table("handling_deadlines")
    op.drop_index(op.f("ix_handling_records_alert_id"), table_name="handling_records")
    op.drop_table("handling_records")
    with op.batch_alter_table("informant_reports") as batch:
        batch.drop_column("verified_at")
        batch.drop_column("verification")
