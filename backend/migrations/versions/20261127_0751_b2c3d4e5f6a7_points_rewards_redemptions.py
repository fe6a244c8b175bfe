"""points: service centers, rewards, stock and redemptions

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
Create Date: 2026-11-27 07:51:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import backend.core.database

revision: str = "b2c3d4e5f6a7"
down_revision: str | None = "a1b2c3d4e5f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "points_service_center",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("name_en", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("region_path", backend.core.database.Ltree(), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lng", sa.Double(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("opening_hours", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "lat BETWEEN -90 AND 90", name=op.f("ck_points_service_center_lat_range")
        ),
        sa.CheckConstraint(
            "lng BETWEEN -180 AND 180", name=op.f("ck_points_service_center_lng_range")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_points_service_center_region_id_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_service_center")),
        sa.UniqueConstraint("code", name=op.f("uq_points_service_center_code")),
    )
    op.create_index(
        op.f("ix_points_service_center_region_id"),
        "points_service_center",
        ["region_id"],
        unique=False,
    )
    op.create_index(
        "ix_points_service_center_region_path",
        "points_service_center",
        ["region_path"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_table(
        "points_reward",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name_en", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("photo_upload_id", sa.Uuid(), nullable=True),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("region_path", backend.core.database.Ltree(), nullable=False),
        sa.Column("limit_count", sa.Integer(), nullable=True),
        sa.Column("limit_period", sa.String(length=8), nullable=True),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "limit_period IS NULL OR limit_period IN ('day', 'week', 'month', 'year')",
            name=op.f("ck_points_reward_limit_period_known"),
        ),
        sa.CheckConstraint(
            "(limit_count IS NULL) = (limit_period IS NULL)",
            name=op.f("ck_points_reward_limit_count_and_period"),
        ),
        sa.CheckConstraint(
            "active_from IS NULL OR active_until IS NULL OR active_from < active_until",
            name=op.f("ck_points_reward_window_ordered"),
        ),
        sa.CheckConstraint(
            "limit_count IS NULL OR limit_count > 0", name=op.f("ck_points_reward_limit_positive")
        ),
        sa.CheckConstraint("price > 0", name=op.f("ck_points_reward_price_positive")),
        sa.ForeignKeyConstraint(
            ["photo_upload_id"], ["upload.id"], name=op.f("fk_points_reward_photo_upload_id_upload")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_points_reward_region_id_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_reward")),
    )
    op.create_index(
        "ix_points_reward_region_path",
        "points_reward",
        ["region_path"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_table(
        "points_redemption",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("points_total", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("settled_transaction_id", sa.Uuid(), nullable=True),
        sa.Column("pickup_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("qr_payload", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fulfilled_by", sa.Uuid(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(state = 'fulfilled') = (fulfilled_at IS NOT NULL AND fulfilled_by IS NOT NULL)",
            name=op.f("ck_points_redemption_fulfilled_has_who_and_when"),
        ),
        sa.CheckConstraint(
            "channel IN ('app', 'counter')", name=op.f("ck_points_redemption_channel_known")
        ),
        sa.CheckConstraint(
            "pickup_code ~ '^[0-9]{6}$'", name=op.f("ck_points_redemption_pickup_code_digits")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'fulfilled', 'cancelled', 'expired')",
            name=op.f("ck_points_redemption_state_known"),
        ),
        sa.CheckConstraint(
            "points_total = quantity * unit_price",
            name=op.f("ck_points_redemption_points_total_adds_up"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_points_redemption_quantity_positive")),
        sa.CheckConstraint("unit_price > 0", name=op.f("ck_points_redemption_unit_price_positive")),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["points_service_center.id"],
            name=op.f("fk_points_redemption_center_id_points_service_center"),
        ),
        sa.ForeignKeyConstraint(
            ["fulfilled_by"],
            ["user_account.id"],
            name=op.f("fk_points_redemption_fulfilled_by_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["points_hold.id"], name=op.f("fk_points_redemption_hold_id_points_hold")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["user_account.id"],
            name=op.f("fk_points_redemption_member_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["user_account.id"],
            name=op.f("fk_points_redemption_requested_by_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["points_reward.id"],
            name=op.f("fk_points_redemption_reward_id_points_reward"),
        ),
        sa.ForeignKeyConstraint(
            ["settled_transaction_id"],
            ["points_transaction.id"],
            name=op.f("fk_points_redemption_settled_transaction_id_points_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_redemption")),
        sa.UniqueConstraint(
            "requested_by", "idempotency_key", name=op.f("uq_points_redemption_requested_by")
        ),
    )
    op.create_index(
        "ix_points_redemption_center_created",
        "points_redemption",
        ["center_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_points_redemption_member", "points_redemption", ["member_id", "id"], unique=False
    )
    op.create_index(
        "ix_points_redemption_member_reward",
        "points_redemption",
        ["member_id", "reward_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_points_redemption_pending_expiry",
        "points_redemption",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "uq_points_redemption_pending_code",
        "points_redemption",
        ["center_id", "pickup_code"],
        unique=True,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "points_restock",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("quantity <> 0", name=op.f("ck_points_restock_quantity_not_zero")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_points_restock_actor_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["points_service_center.id"],
            name=op.f("fk_points_restock_center_id_points_service_center"),
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["points_reward.id"],
            name=op.f("fk_points_restock_reward_id_points_reward"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_restock")),
        sa.UniqueConstraint("actor_id", "idempotency_key", name=op.f("uq_points_restock_actor_id")),
    )
    op.create_index(
        "ix_points_restock_stock",
        "points_restock",
        ["reward_id", "center_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "points_reward_stock",
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "on_hand >= 0", name=op.f("ck_points_reward_stock_on_hand_not_negative")
        ),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_points_reward_stock_reserved_within_on_hand")
        ),
        sa.CheckConstraint(
            "reserved >= 0", name=op.f("ck_points_reward_stock_reserved_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["points_service_center.id"],
            name=op.f("fk_points_reward_stock_center_id_points_service_center"),
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["points_reward.id"],
            name=op.f("fk_points_reward_stock_reward_id_points_reward"),
        ),
        sa.PrimaryKeyConstraint("reward_id", "center_id", name=op.f("pk_points_reward_stock")),
    )

    # Restocks are the record of who put what on the shelf: never changed, never removed.
    op.execute(
        "CREATE TRIGGER points_restock_append_only BEFORE UPDATE OR DELETE ON points_restock "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER points_restock_append_only ON points_restock")
    op.drop_table("points_reward_stock")
    op.drop_index("ix_points_restock_stock", table_name="points_restock")
    op.drop_table("points_restock")
    op.drop_index(
        "uq_points_redemption_pending_code",
        table_name="points_redemption",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(
        "ix_points_redemption_pending_expiry",
        table_name="points_redemption",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index("ix_points_redemption_member_reward", table_name="points_redemption")
    op.drop_index("ix_points_redemption_member", table_name="points_redemption")
    op.drop_index("ix_points_redemption_center_created", table_name="points_redemption")
    op.drop_table("points_redemption")
    op.drop_index(
        "ix_points_reward_region_path", table_name="points_reward", postgresql_using="gist"
    )
    op.drop_table("points_reward")
    op.drop_index(
        "ix_points_service_center_region_path",
        table_name="points_service_center",
        postgresql_using="gist",
    )
    op.drop_index(op.f("ix_points_service_center_region_id"), table_name="points_service_center")
    op.drop_table("points_service_center")
