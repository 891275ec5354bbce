"""The PostgreSQL backend (needs the ``postgres`` extra: ``pip install 'litecoord[postgres]'``)."""

from .coordinator import PostgresCoordinator
from .store import Durability, PgStore

__all__ = ["Durability", "PgStore", "PostgresCoordinator"]
