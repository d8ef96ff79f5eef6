"""CA generations for key rollover: ``family`` (the CA line profiles name), ``generation`` and
``superseded_at`` on certificate_authority; existing CAs become generation 1 of their own family.

Revision ID: 0103
Revises: 0102
Create Date: 2026-11-21 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificate_authority", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE certificate_authority SET family = name, generation = 1")
    with op.batch_alter_table("certificate_authority", schema=None) as batch_op:
        batch_op.alter_column("family", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("generation", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_certificate_authority_family_generation"), ["family", "generation"]
        )


def downgrade() -> None:
    with op.batch_alter_table("certificate_authority", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_certificate_authority_family_generation"), type_="unique")
        batch_op.drop_column("superseded_at")
        batch_op.drop_column("generation")
        batch_op.drop_column("family")
