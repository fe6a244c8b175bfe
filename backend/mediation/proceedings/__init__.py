"""Proceedings: sessions with private minutes, the agreement, no agreement with a referral."""
