-- litecoord schema, version 2 (store.py upgrades version-1 files in setup()).
--
-- Every time column holds integer microseconds since the Unix epoch, UTC,
-- written from the coordinator's injectable clock (never SQLite's 'now'), so
-- a fake clock or freezegun controls every lease.
--
-- The package loads this file from its installed copy (litecoord/backends/sqlite/schema.sql);
-- the repository root keeps an identical copy to read, and a test keeps them equal.

CREATE TABLE IF NOT EXISTS litecoord_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

INSERT OR IGNORE INTO litecoord_meta (key, value) VALUES ('schema_version', '2');

-- A session is a namespace of work items (one backfill). Its counters are
-- kept by the triggers below, so status() reads one row instead of scanning.
CREATE TABLE IF NOT EXISTS sessions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    lease_mode          TEXT NOT NULL DEFAULT 'fixed'
                        CHECK (lease_mode IN ('fixed', 'exponential')),
    acquire_order       TEXT NOT NULL DEFAULT 'largest_first'
                        CHECK (acquire_order IN ('largest_first', 'fifo')),
    max_attempts        INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,            -- first acquisition of any item
    last_update         INTEGER,            -- latest change to any item
    last_sample_at      INTEGER,            -- latest row in progress_samples
    total_items         INTEGER NOT NULL DEFAULT 0,
    assigned_items      INTEGER NOT NULL DEFAULT 0,   -- live and lapsed leases
    completed_items     INTEGER NOT NULL DEFAULT 0,
    failed_items        INTEGER NOT NULL DEFAULT 0,
    total_documents     INTEGER NOT NULL DEFAULT 0,   -- root items only: successors
    total_size_bytes    INTEGER NOT NULL DEFAULT 0,   -- re-count their parent's share
    documents_processed INTEGER NOT NULL DEFAULT 0,
    bytes_processed     INTEGER NOT NULL DEFAULT 0,
    -- Backoff after a failure (version 2): the n-th failure delays the item by
    -- min(max_retry_delay_micros, retry_delay_micros << (n - 1)), jittered.
    retry_delay_micros     INTEGER NOT NULL DEFAULT 10000000 CHECK (retry_delay_micros >= 0),
    max_retry_delay_micros INTEGER NOT NULL DEFAULT 600000000 CHECK (max_retry_delay_micros >= 0)
);

CREATE TABLE IF NOT EXISTS work_items (
    seq                  INTEGER PRIMARY KEY,          -- creation order
    session_id           INTEGER NOT NULL REFERENCES sessions (id),
    work_item_id         TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'assigned', 'completed', 'failed')),
    index_name           TEXT,
    shard_number         INTEGER,
    document_count       INTEGER,
    total_size_bytes     INTEGER,
    -- Acquire order among pending items (ascending, then seq): minus the size in
    -- a largest_first session (unknown sizes last), 0 in a fifo one.
    order_key            INTEGER NOT NULL DEFAULT 0,
    parent_id            TEXT,                         -- set on successor items
    successor_ids        TEXT,                         -- comma-separated, set by a split
    worker_id            TEXT,                         -- holder (or last holder)
    lease_expiry         INTEGER,
    lease_micros         INTEGER,                      -- length of the current lease
    leased_at            INTEGER,                      -- when the current lease was granted
    lease_epoch          INTEGER NOT NULL DEFAULT 0,   -- acquisitions so far
    failure_count        INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    documents_processed  INTEGER NOT NULL DEFAULT 0,
    bytes_processed      INTEGER NOT NULL DEFAULT 0,
    last_progress_update INTEGER,
    progress_changed_at  INTEGER,
    last_heartbeat       INTEGER,
    created_at           INTEGER NOT NULL,
    started_at           INTEGER,
    completed_at         INTEGER,
    updated_at           INTEGER NOT NULL,
    -- Set by a failure with a retry delay: not handed out before this time.
    -- NULL on every other item (a lease clears it), so the pending index below
    -- holds only items available now. Last, as version 2 added it.
    next_attempt_at      INTEGER,
    UNIQUE (session_id, work_item_id)
);

-- Acquire reads the head of one of these partial indexes: an index lookup at
-- any table size, however much completed history the table holds. Each index
-- is written on every change of state, so there are as few as the queries allow.
CREATE INDEX IF NOT EXISTS work_items_pending
    ON work_items (session_id, order_key, seq) WHERE status = 'pending' AND next_attempt_at IS NULL;
-- Failed items waiting out their retry delay, earliest due first.
CREATE INDEX IF NOT EXISTS work_items_retry_wait
    ON work_items (session_id, next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS work_items_assigned_expiry
    ON work_items (session_id, lease_expiry) WHERE status = 'assigned';
CREATE INDEX IF NOT EXISTS work_items_assigned_holder
    ON work_items (session_id, worker_id) WHERE status = 'assigned';
-- The status page pages through failed items; they are few, so this index
-- costs a write only when an item is parked or retried. (Upgrading a
-- version-1 file creates it.)
CREATE INDEX IF NOT EXISTS work_items_failed
    ON work_items (session_id, seq) WHERE status = 'failed';

-- Totals of recent progress, one row at most every 10 seconds per session,
-- kept for an hour: the throughput behind status()'s ETA.
CREATE TABLE IF NOT EXISTS progress_samples (
    session_id          INTEGER NOT NULL REFERENCES sessions (id),
    sampled_at          INTEGER NOT NULL,
    documents_processed INTEGER NOT NULL,
    bytes_processed     INTEGER NOT NULL,
    completed_items     INTEGER NOT NULL,
    PRIMARY KEY (session_id, sampled_at)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS work_items_counters_insert AFTER INSERT ON work_items
BEGIN
    UPDATE sessions SET
        total_items = total_items + 1,
        assigned_items = assigned_items + (NEW.status = 'assigned'),
        completed_items = completed_items + (NEW.status = 'completed'),
        failed_items = failed_items + (NEW.status = 'failed'),
        total_documents = total_documents
            + CASE WHEN NEW.parent_id IS NULL THEN coalesce(NEW.document_count, 0) ELSE 0 END,
        total_size_bytes = total_size_bytes
            + CASE WHEN NEW.parent_id IS NULL THEN coalesce(NEW.total_size_bytes, 0) ELSE 0 END,
        documents_processed = documents_processed + NEW.documents_processed,
        bytes_processed = bytes_processed + NEW.bytes_processed,
        started_at = coalesce(started_at, NEW.started_at),
        last_update = max(coalesce(last_update, 0), NEW.updated_at)
    WHERE id = NEW.session_id;
END;

CREATE TRIGGER IF NOT EXISTS work_items_counters_update AFTER UPDATE ON work_items
BEGIN
    UPDATE sessions SET
        assigned_items = assigned_items + (NEW.status = 'assigned') - (OLD.status = 'assigned'),
        completed_items = completed_items + (NEW.status = 'completed') - (OLD.status = 'completed'),
        failed_items = failed_items + (NEW.status = 'failed') - (OLD.status = 'failed'),
        documents_processed = documents_processed + NEW.documents_processed - OLD.documents_processed,
        bytes_processed = bytes_processed + NEW.bytes_processed - OLD.bytes_processed,
        started_at = coalesce(started_at, NEW.started_at),
        last_update = max(coalesce(last_update, 0), NEW.updated_at)
    WHERE id = NEW.session_id;
END;

CREATE TRIGGER IF NOT EXISTS work_items_counters_delete AFTER DELETE ON work_items
BEGIN
    UPDATE sessions SET
        total_items = total_items - 1,
        assigned_items = assigned_items - (OLD.status = 'assigned'),
        completed_items = completed_items - (OLD.status = 'completed'),
        failed_items = failed_items - (OLD.status = 'failed'),
        total_documents = total_documents
            - CASE WHEN OLD.parent_id IS NULL THEN coalesce(OLD.document_count, 0) ELSE 0 END,
        total_size_bytes = total_size_bytes
            - CASE WHEN OLD.parent_id IS NULL THEN coalesce(OLD.total_size_bytes, 0) ELSE 0 END,
        documents_processed = documents_processed - OLD.documents_processed,
        bytes_processed = bytes_processed - OLD.bytes_processed
    WHERE id = OLD.session_id;
END;

CREATE TRIGGER IF NOT EXISTS sessions_progress_sample AFTER UPDATE OF last_update ON sessions
WHEN NEW.last_update >= coalesce(OLD.last_sample_at, 0) + 10000000
BEGIN
    INSERT OR REPLACE INTO progress_samples
        (session_id, sampled_at, documents_processed, bytes_processed, completed_items)
    VALUES
        (NEW.id, NEW.last_update, NEW.documents_processed, NEW.bytes_processed, NEW.completed_items);
    DELETE FROM progress_samples
    WHERE session_id = NEW.id AND sampled_at < NEW.last_update - 3600000000;
    UPDATE sessions SET last_sample_at = NEW.last_update WHERE id = NEW.id;
END;
