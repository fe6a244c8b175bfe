"""Figures for staff: counts and rates of cases and mediations per region, in aggregate."""

from backend.stats.router import router

__all__ = ["router"]
