"""The category catalogue: what residents may report, complain about or bring to mediation."""
