"""foundation: users, roles, regions, wechat token

Revision ID: 25bfdca35f38
Revises:
Create Date: 2026-11-27 06:10:18.913385
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import backend.core.database

revision: str = "25bfdca35f38"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ltree holds region paths; pg_trgm serves fuzzy text search of later domains.
    op.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "region",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("path", backend.core.database.Ltree(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("name_en", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("boundary", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["region.id"], name=op.f("fk_region_parent_id_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_region")),
        sa.UniqueConstraint("path", name=op.f("uq_region_path")),
        sa.CheckConstraint(
            "level IN ('city', 'district', 'street', 'community', 'grid')",
            name=op.f("ck_region_level_known"),
        ),
    )
    op.create_index(op.f("ix_region_parent_id"), "region", ["parent_id"], unique=False)
    op.create_index(
        "ix_region_path_gist", "region", ["path"], unique=False, postgresql_using="gist"
    )
    op.create_table(
        "user_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("openid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("unionid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("nickname", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("phone_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("phone_masked", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("openid", name=op.f("uq_user_account_openid")),
    )
    op.create_index(
        op.f("ix_user_account_phone_hash"), "user_account", ["phone_hash"], unique=False
    )
    op.create_index(op.f("ix_user_account_unionid"), "user_account", ["unionid"], unique=False)
    op.create_table(
        "wechat_access_token",
        sa.Column("appid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("access_token", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("appid", name=op.f("pk_wechat_access_token")),
    )
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_refresh_token_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(
        op.f("ix_refresh_token_family_id"), "refresh_token", ["family_id"], unique=False
    )
    op.create_index(op.f("ix_refresh_token_user_id"), "refresh_token", ["user_id"], unique=False)
    op.create_table(
        "role_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("region_path", backend.core.database.Ltree(), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["granted_by"], ["user_account.id"], name=op.f("fk_role_grant_granted_by_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_role_grant_region_id_region")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["user_account.id"], name=op.f("fk_role_grant_revoked_by_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_role_grant_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grant")),
        sa.CheckConstraint(
            "role IN ('grid_worker', 'community_staff', 'mediator', 'department_handler', 'admin')",
            name=op.f("ck_role_grant_role_known"),
        ),
    )
    op.create_index(
        "ix_role_grant_region_path",
        "role_grant",
        ["region_path"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_role_grant_user_id"), "role_grant", ["user_id"], unique=False)
    op.create_index(
        "uq_role_grant_active",
        "role_grant",
        ["user_id", "role", "region_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_index(
        "uq_role_grant_active",
        table_name="role_grant",
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.drop_index(op.f("ix_role_grant_user_id"), table_name="role_grant")
    op.drop_index("ix_role_grant_region_path", table_name="role_grant", postgresql_using="gist")
    op.drop_table("role_grant")
    op.drop_index(op.f("ix_refresh_token_user_id"), table_name="refresh_token")
    op.drop_index(op.f("ix_refresh_token_family_id"), table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_table("wechat_access_token")
    op.drop_index(op.f("ix_user_account_unionid"), table_name="user_account")
    op.drop_index(op.f("ix_user_account_phone_hash"), table_name="user_account")
    op.drop_table("user_account")
    op.drop_index("ix_region_path_gist", table_name="region", postgresql_using="gist")
    op.drop_index(op.f("ix_region_parent_id"), table_name="region")
    op.drop_table("region")
    # ### end Alembic commands ###
