"""points: the ledger (accounts, transactions, postings, lots, holds, earning rules)

Revision ID: a1b2c3d4e5f6
Revises: 49f89510b271
Create Date: 2026-11-27 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "a1b2c3d4e5f6"
down_revision: str | None = "49f89510b271"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The system accounts, with the fixed ids `points.models` names them by.
SYSTEM_ACCOUNTS = (
    ("00000000-0000-7000-8000-000000000001", "issuance", "issuance"),
    ("00000000-0000-7000-8000-000000000002", "holds", "holds"),
    ("00000000-0000-7000-8000-000000000003", "expiry", "expiry"),
)


def upgrade() -> None:
    op.create_table(
        "points_earning_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("activity_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "daily_cap IS NULL OR daily_cap > 0",
            name=op.f("ck_points_earning_rule_daily_cap_positive"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_earning_rule_points_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_earning_rule")),
        sa.UniqueConstraint("activity_type", name=op.f("uq_points_earning_rule_activity_type")),
    )
    op.create_table(
        "points_transaction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("activity_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'reverse') = (reverses_id IS NOT NULL)",
            name=op.f("ck_points_transaction_reversal_links"),
        ),
        sa.CheckConstraint(
            "kind IN ('award', 'reverse', 'hold', 'capture', 'release', 'expire')",
            name=op.f("ck_points_transaction_kind_known"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_points_transaction_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["points_transaction.id"],
            name=op.f("fk_points_transaction_reverses_id_points_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_transaction")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_points_transaction_idempotency_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_points_transaction_reverses_id")),
    )
    op.create_index(
        "ix_points_transaction_activity_created",
        "points_transaction",
        ["activity_type", "created_at"],
        unique=False,
        postgresql_where=sa.text("activity_type IS NOT NULL"),
    )
    op.create_table(
        "points_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'member') = (owner_id IS NOT NULL)",
            name=op.f("ck_points_account_member_has_owner"),
        ),
        sa.CheckConstraint(
            "kind <> 'issuance' OR balance <= 0",
            name=op.f("ck_points_account_issuance_not_positive"),
        ),
        sa.CheckConstraint(
            "kind = 'issuance' OR balance >= 0",
            name=op.f("ck_points_account_balance_not_negative"),
        ),
        sa.CheckConstraint(
            "kind IN ('member', 'issuance', 'redemption', 'expiry', 'holds')",
            name=op.f("ck_points_account_kind_known"),
        ),
        sa.CheckConstraint("version >= 0", name=op.f("ck_points_account_version_not_negative")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user_account.id"], name=op.f("fk_points_account_owner_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_account")),
        sa.UniqueConstraint("code", name=op.f("uq_points_account_code")),
        sa.UniqueConstraint("owner_id", name=op.f("uq_points_account_owner_id")),
    )
    op.create_table(
        "points_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settlement_id", sa.Uuid(), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(state = 'pending') = (settlement_id IS NULL)",
            name=op.f("ck_points_hold_settled_unless_pending"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'captured', 'released', 'expired')",
            name=op.f("ck_points_hold_state_known"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_hold_points_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_account.id"],
            name=op.f("fk_points_hold_account_id_points_account"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["points_transaction.id"],
            name=op.f("fk_points_hold_settlement_id_points_transaction"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["points_transaction.id"],
            name=op.f("fk_points_hold_transaction_id_points_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_hold")),
        sa.UniqueConstraint("settlement_id", name=op.f("uq_points_hold_settlement_id")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_points_hold_transaction_id")),
    )
    op.create_index(
        "ix_points_hold_pending_account",
        "points_hold",
        ["account_id"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_points_hold_pending_due",
        "points_hold",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "points_lot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_lot_points_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= points",
            name=op.f("ck_points_lot_remaining_within_points"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_account.id"],
            name=op.f("fk_points_lot_account_id_points_account"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["points_transaction.id"],
            name=op.f("fk_points_lot_transaction_id_points_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lot")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_points_lot_transaction_id")),
    )
    op.create_index(
        "ix_points_lot_account_expiry",
        "points_lot",
        ["account_id", "expires_at", "id"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_points_lot_due",
        "points_lot",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_table(
        "points_hold_lot",
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_hold_lot_points_positive")),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["points_hold.id"], name=op.f("fk_points_hold_lot_hold_id_points_hold")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["points_lot.id"], name=op.f("fk_points_hold_lot_lot_id_points_lot")
        ),
        sa.PrimaryKeyConstraint("hold_id", "lot_id", name=op.f("pk_points_hold_lot")),
    )
    op.create_table(
        "points_posting",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("lot_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_points_posting_amount_not_zero")),
        sa.CheckConstraint(
            "(balance_after IS NULL) = (seq IS NULL)",
            name=op.f("ck_points_posting_running_balance_whole"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_account.id"],
            name=op.f("fk_points_posting_account_id_points_account"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["points_lot.id"], name=op.f("fk_points_posting_lot_id_points_lot")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["points_transaction.id"],
            name=op.f("fk_points_posting_transaction_id_points_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_posting")),
        sa.UniqueConstraint("account_id", "seq", name=op.f("uq_points_posting_account_id")),
        sa.UniqueConstraint(
            "transaction_id", "account_id", name=op.f("uq_points_posting_transaction_id")
        ),
    )

    # The system accounts exist from the start, under fixed ids.
    for account_id, kind, code in SYSTEM_ACCOUNTS:
        op.execute(
            "INSERT INTO points_account (id, kind, code, balance, version) "
            f"VALUES ('{account_id}', '{kind}', '{code}', 0, 0)"
        )

    # The ledger is append-only: transactions and postings are never changed or removed
    # (refuse_change() comes from the cases migration).
    for table in ("points_transaction", "points_posting"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
        )

    # Double entry: at commit, every transaction's postings sum to zero.
    op.execute(
        """
        CREATE FUNCTION points_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            total numeric;
        BEGIN
            SELECT COALESCE(SUM(amount), 0) INTO total
            FROM points_posting WHERE transaction_id = NEW.transaction_id;
            IF total <> 0 THEN
                RAISE EXCEPTION 'points transaction % is unbalanced: its postings sum to %',
                    NEW.transaction_id, total
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'points_posting_balanced';
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER points_posting_balanced AFTER INSERT ON points_posting "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "EXECUTE FUNCTION points_transaction_balanced()"
    )

    # A system account's balance moves at commit (its postings carry no running balance), so
    # its hot row is locked only while the transaction commits. Postings are inserted in
    # account order, so commits take these locks in one order.
    op.execute(
        """
        CREATE FUNCTION points_post_to_system_account() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE points_account
            SET balance = balance + NEW.amount, version = version + 1
            WHERE id = NEW.account_id;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER points_posting_system_balance AFTER INSERT ON points_posting "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.seq IS NULL) "
        "EXECUTE FUNCTION points_post_to_system_account()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER points_posting_system_balance ON points_posting")
    op.execute("DROP FUNCTION points_post_to_system_account()")
    op.execute("DROP TRIGGER points_posting_balanced ON points_posting")
    op.execute("DROP FUNCTION points_transaction_balanced()")
    for table in ("points_transaction", "points_posting"):
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.drop_table("points_posting")
    op.drop_table("points_hold_lot")
    op.drop_index(
        "ix_points_lot_due", table_name="points_lot", postgresql_where=sa.text("remaining > 0")
    )
    op.drop_index(
        "ix_points_lot_account_expiry",
        table_name="points_lot",
        postgresql_where=sa.text("remaining > 0"),
    )
    op.drop_table("points_lot")
    op.drop_index(
        "ix_points_hold_pending_due",
        table_name="points_hold",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(
        "ix_points_hold_pending_account",
        table_name="points_hold",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_table("points_hold")
    op.drop_table("points_account")
    op.drop_index(
        "ix_points_transaction_activity_created",
        table_name="points_transaction",
        postgresql_where=sa.text("activity_type IS NOT NULL"),
    )
    op.drop_table("points_transaction")
    op.drop_table("points_earning_rule")
