"""peewee models of the tables in ``schema.sql``, bound to a database instance.

The DDL lives in ``schema.sql`` (it also holds the partial indexes and the
counter triggers peewee cannot express); these models mirror its columns for
the cold paths (listing, sessions). A test keeps the two in step.
"""

from __future__ import annotations

from typing import NamedTuple

import peewee

__all__ = ["Models", "create_models"]


class Models(NamedTuple):
    Session: type[peewee.Model]
    WorkItem: type[peewee.Model]
    ProgressSample: type[peewee.Model]


def create_models(db: peewee.Database) -> Models:
    """Model classes bound to ``db`` (never to a module-global connection)."""

    class Base(peewee.Model):
        class Meta:
            database = db

    class Session(Base):
        id = peewee.AutoField()
        name = peewee.TextField(unique=True)
        lease_mode = peewee.TextField(default="fixed")
        acquire_order = peewee.TextField(default="largest_first")
        max_attempts = peewee.IntegerField(default=3)
        created_at = peewee.IntegerField()
        started_at = peewee.IntegerField(null=True)
        last_update = peewee.IntegerField(null=True)
        last_sample_at = peewee.IntegerField(null=True)
        total_items = peewee.IntegerField(default=0)
        assigned_items = peewee.IntegerField(default=0)
        completed_items = peewee.IntegerField(default=0)
        failed_items = peewee.IntegerField(default=0)
        total_documents = peewee.IntegerField(default=0)
        total_size_bytes = peewee.IntegerField(default=0)
        documents_processed = peewee.IntegerField(default=0)
        bytes_processed = peewee.IntegerField(default=0)
        retry_delay_micros = peewee.IntegerField(default=10_000_000)
        max_retry_delay_micros = peewee.IntegerField(default=600_000_000)
        paused_at = peewee.IntegerField(null=True)
        split_min_documents = peewee.IntegerField(null=True, default=10_000)

        class Meta:
            table_name = "sessions"

    class WorkItem(Base):
        seq = peewee.AutoField()
        session_id = peewee.IntegerField()
        work_item_id = peewee.TextField()
        status = peewee.TextField(default="pending")
        index_name = peewee.TextField(null=True)
        shard_number = peewee.IntegerField(null=True)
        document_count = peewee.IntegerField(null=True)
        total_size_bytes = peewee.IntegerField(null=True)
        order_key = peewee.IntegerField(default=0)
        parent_id = peewee.TextField(null=True)
        successor_ids = peewee.TextField(null=True)
        worker_id = peewee.TextField(null=True)
        lease_expiry = peewee.IntegerField(null=True)
        lease_micros = peewee.IntegerField(null=True)
        leased_at = peewee.IntegerField(null=True)
        lease_epoch = peewee.IntegerField(default=0)
        failure_count = peewee.IntegerField(default=0)
        last_error = peewee.TextField(null=True)
        documents_processed = peewee.IntegerField(default=0)
        bytes_processed = peewee.IntegerField(default=0)
        last_progress_update = peewee.IntegerField(null=True)
        progress_changed_at = peewee.IntegerField(null=True)
        last_heartbeat = peewee.IntegerField(null=True)
        created_at = peewee.IntegerField()
        started_at = peewee.IntegerField(null=True)
        completed_at = peewee.IntegerField(null=True)
        updated_at = peewee.IntegerField()
        next_attempt_at = peewee.IntegerField(null=True)
        range_start = peewee.IntegerField(default=0)
        range_end = peewee.IntegerField(null=True)
        split_requested_at = peewee.IntegerField(null=True)
        counts_in_totals = peewee.IntegerField(default=1)

        class Meta:
            table_name = "work_items"

    class ProgressSample(Base):
        session_id = peewee.IntegerField()
        sampled_at = peewee.IntegerField()
        documents_processed = peewee.IntegerField()
        bytes_processed = peewee.IntegerField()
        completed_items = peewee.IntegerField()

        class Meta:
            table_name = "progress_samples"
            primary_key = peewee.CompositeKey("session_id", "sampled_at")

    return Models(Session, WorkItem, ProgressSample)
