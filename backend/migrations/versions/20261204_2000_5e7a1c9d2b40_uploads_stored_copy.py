"""uploads: the verified copy (stored_key) and the staging object's removal

Revision ID: 5e7a1c9d2b40
Revises: 790d18882570
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "5e7a1c9d2b40"
down_revision: str | None = "790d18882570"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "upload",
        sa.Column("stored_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    )
    op.add_column(
        "upload", sa.Column("staging_removed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_unique_constraint(op.f("uq_upload_stored_key"), "upload", ["stored_key"])
    # Uploads attached before the copy existed are served from where they were posted: that
    # object is their stored one, and the cleanup job must leave it.
    op.execute(
        "UPDATE upload SET stored_key = object_key, staging_removed_at = attached_at "
        "WHERE state = 'attached'"
    )
    op.create_index(
        "ix_upload_staging_left",
        "upload",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("state = 'attached' AND staging_removed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_upload_staging_left",
        table_name="upload",
        postgresql_where=sa.text("state = 'attached' AND staging_removed_at IS NULL"),
    )
    op.drop_constraint(op.f("uq_upload_stored_key"), "upload", type_="unique")
    op.drop_column("upload", "staging_removed_at")
    op.drop_column("upload", "stored_key")
