"""accounts.sessions_valid_after: logging out of the console ends the account's sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 08:00:00

Console sessions are signed cookies (no session table). A cookie issued before this
instant is refused, so logging out (or an operator revoking sessions) ends every session
of the account at once, including a copy of the cookie kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column: SQLite adds it without rebuilding the table (views stay valid).
    op.add_column("accounts", sa.Column("sessions_valid_after", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("sessions_valid_after")
