"""Rewards and redemption: service centers, the catalog, pickup codes, the counter."""
