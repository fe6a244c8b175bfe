"""The double-entry points ledger: accounts, lots, holds, statements, earning rules."""
