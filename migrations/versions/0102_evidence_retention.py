"""Evidence retention: identity-document copies can be deleted after the retention period, their
digest kept (``ciphertext`` nullable, ``purged_at``).

Revision ID: 0102
Revises: 0101
Create Date: 2026-11-21 12:35:55.073031
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ra_evidence_copy", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    # Deleted copies cannot come back: their rows get an empty ciphertext (the digest stays).
    op.execute(
        sa.text("UPDATE ra_evidence_copy SET ciphertext = :empty WHERE ciphertext IS NULL").bindparams(empty=b"")
    )
    with op.batch_alter_table("ra_evidence_copy", schema=None) as batch_op:
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("purged_at")
