"""installation: the secret key's check value (and other facts about the installation)

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-06 23:40:00

A daemon or command started with another secret key than the one that encrypted the data
used to go on silently (decryption returned nothing, links were refused). The check value
stored here at first start lets every later start compare keys and refuse a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("installation")
