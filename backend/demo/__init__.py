"""The demo city: regions and grids, accounts, categories, rewards, volunteers, mediators."""
