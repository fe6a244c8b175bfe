"""The demo city: regions and grids, accounts, categories, rewards, volunteers, mediators."""

from backend.demo.city import DEMO_ACCOUNTS
from backend.demo.loading import load_demo_data

__all__ = ["DEMO_ACCOUNTS", "load_demo_data"]
