"""informant_reports.corrects / withdraws: an informant corrects or withdraws a report;
shift_handovers: the duty view's handover notes

Revision ID: 0013
Revises: 0014
Create Date: 2026-12-06 23:50:00

interfaces §8: within a window after sending, an informant may send a report that corrects
(full new content) or withdraws their own earlier report. The new report is stored as
any other; these columns name the report it acts on, so the original stays as it was
sent (the audit trail) and "is this report already corrected?" is one indexed lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: SQLite adds them without rebuilding the table (views stay valid).
    op.add_column("informant_reports", sa.Column("corrects", sa.String(64)))
    op.add_column("informant_reports", sa.Column("withdraws", sa.String(64)))
    op.create_index("ix_informant_reports_corrects", "informant_reports", ["corrects"])
    op.create_index("ix_informant_reports_withdraws", "informant_reports", ["withdraws"])
    op.create_table(
        "shift_handovers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("region_code", sa.String(6), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["region_code"], ["regions.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shift_handovers_region_code", "shift_handovers", ["region_code"])
    op.create_index("ix_shift_handovers_created_at", "shift_handovers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_shift_handovers_created_at", "shift_handovers")
    op.drop_index("ix_shift_handovers_region_code", "shift_handovers")
    op.drop_table("shift_handovers")
    op.drop_index("ix_informant_reports_withdraws", "informant_reports")
    op.drop_index("ix_informant_reports_corrects", "informant_reports")
    with op.batch_alter_table("informant_reports") as batch:
        batch.drop_column("withdraws")
        batch.drop_column("corrects")
