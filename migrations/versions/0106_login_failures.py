"""Login throttling: ``ra_login_failure`` records each failed login (the account as the SHA-256 of
its normalised email, the client address, the time); the RA refuses logins for an email or from an
address with too many recent failures (EN 319 401 REQ-7.4-05 access control; brute force).

Revision ID: 0106
Revises: 0105
Create Date: 2026-11-21 14:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0106"
down_revision: str | None = "0105"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ra_login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_login_failure")),
    )
    op.create_index(op.f("ix_ra_login_failure_email_sha256_at"), "ra_login_failure", ["email_sha256", "at"])
    op.create_index(op.f("ix_ra_login_failure_client_address_at"), "ra_login_failure", ["client_address", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ra_login_failure_client_address_at"), table_name="ra_login_failure")
    op.drop_index(op.f("ix_ra_login_failure_email_sha256_at"), table_name="ra_login_failure")
    op.drop_table("ra_login_failure")
