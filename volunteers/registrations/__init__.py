"""Registrations: sign-up and approval, teams, service records, the leaderboard."""
