"""``ra_tan_failure`` also counts anonymous TAN requests that sent nothing (kind ``tan-request``),
for any card id, so that the per-address limit of ``POST /api/tans`` counts every request and its
answer depends on the caller alone (ra/tan.py).

Revision ID: 0111
Revises: 0110
Create Date: 2026-11-21 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0111"
down_revision: str | None = "0110"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_ra_tan_failure_kind"


def upgrade() -> None:
    # SQLite cannot alter a constraint: batch mode copies the table into one with the new check.
    with op.batch_alter_table("ra_tan_failure", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), "kind IN ('tan', 'registration-secret', 'tan-request')")


def downgrade() -> None:
    op.execute("DELETE FROM ra_tan_failure WHERE kind = 'tan-request'")
    with op.batch_alter_table("ra_tan_failure", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(_NAME), type_="check")
        batch_op.create_check_constraint(op.f(_NAME), "kind IN ('tan', 'registration-secret')")
