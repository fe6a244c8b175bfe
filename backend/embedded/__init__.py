"""Embedded servers for a machine with nothing but Python: PostgreSQL and S3 (SeaweedFS).

Used only when no external database or S3 endpoint is configured, so that a newcomer can run
the whole backend after `pip install` with nothing else on the machine.
"""

from backend.embedded.postgres import EmbeddedPostgres
from backend.embedded.s3 import EmbeddedS3

__all__ = ["EmbeddedPostgres", "EmbeddedS3"]
