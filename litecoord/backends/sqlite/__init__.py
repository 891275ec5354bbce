"""The SQLite backend: one shared file, ``BEGIN IMMEDIATE`` claims, WAL syncs."""

from .coordinator import SqliteCoordinator
from .store import Durability

__all__ = ["Durability", "SqliteCoordinator"]
