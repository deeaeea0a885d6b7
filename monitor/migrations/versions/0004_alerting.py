"""alerting: silences, acknowledge links, channel health, escalation and batching columns

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN works on SQLite for nullable columns and for NOT NULL
    # ones with a constant default, so no table rebuild is needed.
    op.add_column("alerts", sa.Column("escalation_started_at", sa.DateTime(timezone=True)))
    op.add_column("alerts", sa.Column("evidence", JSON))
    op.add_column(
        "deliveries",
        sa.Column("priority", sa.SmallInteger(), server_default="4", nullable=False),
    )
    op.add_column("deliveries", sa.Column("batch_key", sa.String(length=300)))
    op.create_index("ix_deliveries_batch_key", "deliveries", ["batch_key", "created_at"])

    op.create_table(
        "silences",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=64), nullable=True),
        sa.Column("end_processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index(op.f("ix_silences_region_code"), "silences", ["region_code"])
    op.create_index(
        "ix_silences_pending_end",
        "silences",
        ["ends_at"],
        postgresql_where=sa.text("end_processed_at IS NULL"),
        sqlite_where=sa.text("end_processed_at IS NULL"),
    )

    op.create_table(
        "ack_links",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_ack_links_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_ack_links")),
    )
    op.create_index(op.f("ix_ack_links_alert_id"), "ack_links", ["alert_id"])

    op.create_table(
        "channel_health",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_channel_health")),
    )


def downgrade() -> None:
    op.drop_table("channel_health")
    op.drop_index(op.f("ix_ack_links_alert_id"), table_name="ack_links")
    op.drop_table("ack_links")
    op.drop_index(
        "ix_silences_pending_end",
        table_name="silences",
        postgresql_where=sa.text("end_processed_at IS NULL"),
        sqlite_where=sa.text("end_processed_at IS NULL"),
    )
    op.drop_index(op.f("ix_silences_region_code"), table_name="silences")
    op.drop_table("silences")
    op.drop_index("ix_deliveries_batch_key", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("batch_key")
        batch_op.drop_column("priority")
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("escalation_started_at")
