-- litecoord schema, version 5 (store.py upgrades files of versions 1 to 4 in setup()).
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

INSERT OR IGNORE INTO litecoord_meta (key, value) VALUES ('schema_version', '5');

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
    total_documents     INTEGER NOT NULL DEFAULT 0,   -- items that count in totals only:
    total_size_bytes    INTEGER NOT NULL DEFAULT 0,   -- RFS successors re-count their parent's share
    documents_processed INTEGER NOT NULL DEFAULT 0,
    bytes_processed     INTEGER NOT NULL DEFAULT 0,
    -- Backoff after a failure (version 2): the n-th failure delays the item by
    -- min(max_retry_delay_micros, retry_delay_micros << (n - 1)), jittered.
    retry_delay_micros     INTEGER NOT NULL DEFAULT 10000000 CHECK (retry_delay_micros >= 0),
    max_retry_delay_micros INTEGER NOT NULL DEFAULT 600000000 CHECK (max_retry_delay_micros >= 0),
    -- Set while the session is paused (version 3): acquire hands out nothing.
    paused_at              INTEGER,
    -- Split requests (version 4): an idle acquire asks the holder of the lease
    -- with the most work left to split it, if at least twice this many
    -- documents are left. NULL: requests are off.
    split_min_documents    INTEGER DEFAULT 10000 CHECK (split_min_documents >= 0)
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
    -- Version 4. The half-open range [range_start, range_end) of document
    -- positions of the shard the item covers (range_end NULL: to the shard's end).
    range_start          INTEGER NOT NULL DEFAULT 0,
    range_end            INTEGER,
    -- A split request: the position an idle worker proposes the holder split at.
    split_requested_at   INTEGER,
    -- 1 when the item's document_count and total_size_bytes count in the
    -- session's totals: roots, and what live splits cut from an item that
    -- counts; 0 for RFS successors, whose estimates re-count their parent's.
    counts_in_totals     INTEGER NOT NULL DEFAULT 1,
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
        total_documents = total_documents + NEW.counts_in_totals * coalesce(NEW.document_count, 0),
        total_size_bytes = total_size_bytes + NEW.counts_in_totals * coalesce(NEW.total_size_bytes, 0),
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
        -- Only a live split changes an item's estimates (it moves them to the new item).
        total_documents = total_documents + NEW.counts_in_totals * coalesce(NEW.document_count, 0)
            - OLD.counts_in_totals * coalesce(OLD.document_count, 0),
        total_size_bytes = total_size_bytes + NEW.counts_in_totals * coalesce(NEW.total_size_bytes, 0)
            - OLD.counts_in_totals * coalesce(OLD.total_size_bytes, 0),
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
        total_documents = total_documents - OLD.counts_in_totals * coalesce(OLD.document_count, 0),
        total_size_bytes = total_size_bytes - OLD.counts_in_totals * coalesce(OLD.total_size_bytes, 0),
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

-- Every attempt at an item (version 3): one row per lease, from its grant to
-- how it ended. Since version 5 a row is written once, when its attempt ends:
-- the running attempt is the item's own lease (status 'assigned' with a
-- holder: its lease_epoch, worker_id and leased_at), read from work_items,
-- its figures those the previous attempt ended with (see console.py). So a
-- lease cycle costs one row insert, inside the statement that ends the lease:
-- no statement, round trip or sync of its own, and nothing at acquire.
-- (Rows still 'running' are attempts begun before version 5, or imported:
-- the trigger that ends them fills them in.) Keyed by session first, so one
-- session's attempts are one range (the workers view, delete-session), then
-- by the item's row and the epoch.
CREATE TABLE IF NOT EXISTS attempts (
    session_id          INTEGER NOT NULL,
    item_seq            INTEGER NOT NULL,
    lease_epoch         INTEGER NOT NULL,
    worker_id           TEXT NOT NULL,
    leased_at           INTEGER NOT NULL,
    ended_at            INTEGER,                       -- NULL while running
    outcome             TEXT NOT NULL DEFAULT 'running'
                        CHECK (outcome IN ('running', 'completed', 'failed', 'released', 'lapsed', 'split')),
    documents_processed INTEGER NOT NULL DEFAULT 0,    -- the item's figures when it ended
    bytes_processed     INTEGER NOT NULL DEFAULT 0,
    error               TEXT,
    PRIMARY KEY (session_id, item_seq, lease_epoch)
) WITHOUT ROWID;

-- A new lease over an item that still had a holder: that lease lapsed and
-- is being taken over; its attempt ends as 'lapsed' at its expiry. (Release
-- and failure clear the holder, so an ordinary acquire does not fire this.)
CREATE TRIGGER IF NOT EXISTS work_items_attempt_lapse AFTER UPDATE OF lease_epoch ON work_items
WHEN NEW.lease_epoch > OLD.lease_epoch AND OLD.status = 'assigned' AND OLD.worker_id IS NOT NULL
BEGIN
    INSERT INTO attempts (session_id, item_seq, lease_epoch, worker_id, leased_at, ended_at, outcome,
                          documents_processed, bytes_processed)
    VALUES (OLD.session_id, OLD.seq, OLD.lease_epoch, OLD.worker_id,
            coalesce(OLD.leased_at, OLD.started_at, OLD.updated_at),
            min(coalesce(OLD.lease_expiry, NEW.leased_at), NEW.leased_at), 'lapsed',
            OLD.documents_processed, OLD.bytes_processed)
    ON CONFLICT (session_id, item_seq, lease_epoch) DO UPDATE SET outcome = excluded.outcome, ended_at = excluded.ended_at,
        documents_processed = excluded.documents_processed, bytes_processed = excluded.bytes_processed
    WHERE ended_at IS NULL;
END;

-- The holder ends its attempt: completing (a split completes with successors),
-- failing (the failure count grows) or releasing (the holder is cleared).
-- Renewals change none of these columns, so they never fire it.
CREATE TRIGGER IF NOT EXISTS work_items_attempt_end AFTER UPDATE OF status, failure_count, worker_id ON work_items
WHEN NEW.lease_epoch = OLD.lease_epoch AND OLD.status = 'assigned' AND OLD.worker_id IS NOT NULL AND (
    NEW.status = 'completed' OR NEW.failure_count > OLD.failure_count OR NEW.worker_id IS NULL)
BEGIN
    INSERT INTO attempts (session_id, item_seq, lease_epoch, worker_id, leased_at, ended_at, outcome,
                          documents_processed, bytes_processed, error)
    VALUES (NEW.session_id, NEW.seq, NEW.lease_epoch, OLD.worker_id,
            coalesce(OLD.leased_at, OLD.started_at, OLD.updated_at), NEW.updated_at,
            CASE
                WHEN NEW.status = 'completed' THEN CASE WHEN NEW.successor_ids IS NULL THEN 'completed' ELSE 'split' END
                WHEN NEW.failure_count > OLD.failure_count THEN 'failed'
                ELSE 'released' END,
            NEW.documents_processed, NEW.bytes_processed,
            CASE WHEN NEW.failure_count > OLD.failure_count THEN NEW.last_error END)
    ON CONFLICT (session_id, item_seq, lease_epoch) DO UPDATE SET outcome = excluded.outcome, ended_at = excluded.ended_at, error = excluded.error,
        documents_processed = excluded.documents_processed, bytes_processed = excluded.bytes_processed
    WHERE ended_at IS NULL;
END;
