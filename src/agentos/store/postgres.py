"""PostgreSQL through psycopg 3: many servers and workers share one database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agentos.store.base import Store


class PostgresStore(Store):
    dialect = "postgresql"

    def _create_engine(self) -> AsyncEngine:
        return create_async_engine(
            async_url(self.url),
            pool_size=self.pool_size,
            max_overflow=self.pool_size,
            pool_recycle=1800,
        )


def async_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url}")


sync_url = async_url  # psycopg 3 serves both under one dialect name
