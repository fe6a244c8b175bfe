"""The one-click mediation request: invitations, consent, withdrawal, the parties' view."""
