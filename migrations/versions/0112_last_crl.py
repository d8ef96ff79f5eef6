"""``crl_state.closed_at``: a CA's end of life, when its last CRL (nextUpdate 99991231235959Z) was
published; afterwards it reserves no serial and changes no status (ca/crl_ocsp/crl.py).

Revision ID: 0112
Revises: 0111
Create Date: 2026-11-21 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0112"
down_revision: str | None = "0111"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crl_state") as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crl_state") as batch_op:
        batch_op.drop_column("closed_at")
