"""``ra_renewal_document``: the documents of a renewal order follow the evidence retention period as
the ID copy does — ``ciphertext`` becomes empty once it has passed, ``purged_at`` says when (the
digest, size and who supplied and signed them stay).

Revision ID: 0114
Revises: 0113
Create Date: 2026-11-21 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0114"
down_revision: str | None = "0113"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ra_renewal_document") as batch_op:
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A purged document has no bytes to restore: it keeps an empty value under the NOT NULL column.
    op.execute("UPDATE ra_renewal_document SET ciphertext = '' WHERE ciphertext IS NULL")
    with op.batch_alter_table("ra_renewal_document") as batch_op:
        batch_op.drop_column("purged_at")
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=False)
