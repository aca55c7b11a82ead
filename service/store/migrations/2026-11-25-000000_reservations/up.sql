-- The site: its P-nodes and the reservations admitted on them. `allocation` is the placement
-- crate's Allocation as JSON (nodes, P-nodes, network id, subnet, MACs, IPs, GW-node).
CREATE TABLE pnodes (
    name TEXT PRIMARY KEY NOT NULL,
    cpu BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib BIGINT NOT NULL,
    labels TEXT NOT NULL,
    gw_capable BOOLEAN NOT NULL,
    state TEXT NOT NULL
);
-- A reservation stays after its release (released_ms set) as the record of what was held.
CREATE TABLE reservations (
    id TEXT PRIMARY KEY NOT NULL,
    start_s BIGINT NOT NULL,
    end_s BIGINT NOT NULL,
    allocation TEXT NOT NULL,
    admitted_ms BIGINT NOT NULL,
    released_ms BIGINT,
    release_reason TEXT
);
CREATE INDEX reservations_active ON reservations (released_ms, end_s);
-- One row. Every change to the site takes its lock first (SQLite: BEGIN IMMEDIATE; PostgreSQL:
-- SELECT … FOR UPDATE), so admissions are serialized across connections and processes; the
-- generation tells a process whether its cached site state is still current.
CREATE TABLE site_lock (
    id INTEGER PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);
INSERT INTO site_lock (id, generation) VALUES (1, 0);
