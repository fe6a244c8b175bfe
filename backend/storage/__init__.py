"""Uploads: presigned POST policies for wx.uploadFile, checked before a report may name them."""

from backend.storage.router import router

__all__ = ["router"]
