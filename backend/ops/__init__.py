"""Liveness, readiness and metrics."""

from backend.ops.router import router

__all__ = ["router"]
