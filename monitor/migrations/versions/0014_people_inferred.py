"""petitions/informant_reports.people_inferred: the number of people read from the text

Revision ID: 0014
Revises: 0008
Create Date: 2026-12-07 00:00:00

A petition or report that gives its number of people only in words ("上百名农民工") gets
`people_involved` filled from the text at intake when the field is missing or 0; this
column records that the figure was inferred rather than given.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("petitions", "informant_reports")


def upgrade() -> None:
    # NOT NULL with a server default: SQLite adds it without rebuilding the table.
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("people_inferred", sa.Boolean(), nullable=False, server_default=sa.false()),
        )


def downgrade() -> None:
    # Not a batch rebuild: on SQLite that renames the table, which the analysts' views
    # over it refuse. SQLite (3.35+) drops a plain column in place, as PostgreSQL does.
    for table in TABLES:
        op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN people_inferred"))
