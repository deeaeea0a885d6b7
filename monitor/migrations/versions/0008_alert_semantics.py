"""Alert semantics (issue 13): incidents, follow-ups and risk hysteresis

Revision ID: 0008
Revises: 0011
Create Date: 2026-12-06 23:50:00

- `informant_reports.follows`: the report an informant's report follows up.
- `alerts.entity_key`, `occurred_at`, `last_event_at`: one event alert per incident of an
  entity (72 h join window from the incident's last event), with the events' own times.
- `risk_streaks`: how many scorings a risk has stayed in (or below) a band, so that a risk
  alert opens and closes only after several (no flapping).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them without rebuilding the tables (views stay valid).
    op.add_column("informant_reports", sa.Column("follows", sa.String(64)))
    op.add_column("alerts", sa.Column("entity_key", sa.String(200)))
    op.add_column("alerts", sa.Column("occurred_at", sa.DateTime(timezone=True)))
    op.add_column("alerts", sa.Column("last_event_at", sa.DateTime(timezone=True)))
    # Alerts written before: their dedup key was the entity + kind.
    op.execute("UPDATE alerts SET entity_key = dedup_key WHERE entity_key IS NULL")
    op.create_index("ix_alerts_entity_key", "alerts", ["entity_key"])
    op.create_table(
        "risk_streaks",
        sa.Column("dedup_key", sa.String(200), primary_key=True),
        sa.Column("direction", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(3)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("risk_streaks")
    op.drop_index("ix_alerts_entity_key", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("last_event_at")
        batch.drop_column("occurred_at")
        batch.drop_column("entity_key")
    with op.batch_alter_table("informant_reports") as batch:
        batch.drop_column("follows")
