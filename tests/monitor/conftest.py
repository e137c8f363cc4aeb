"""Monitor fixtures: the PostgreSQL server the audit tests use."""

from tests.audit.conftest import pg_server

__all__ = ["pg_server"]
