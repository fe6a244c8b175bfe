"""The WeChat server API: an httpx client, and an emulator for development and tests."""
