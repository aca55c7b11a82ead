-- The roll catalog. A roll's files are kept as data so a restart needs no original directory.
CREATE TABLE rolls (
    name TEXT PRIMARY KEY NOT NULL,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    added_ms BIGINT NOT NULL
);
CREATE TABLE roll_files (
    roll TEXT NOT NULL REFERENCES rolls (name) ON DELETE CASCADE,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (roll, path)
);
-- The rolls enabled for a virtual cluster (System resource id); a cluster with none listed
-- uses every roll of the catalog.
CREATE TABLE cluster_rolls (
    cluster TEXT NOT NULL,
    roll TEXT NOT NULL REFERENCES rolls (name),
    PRIMARY KEY (cluster, roll)
);
-- Hosts that may install: how a node is recognised (MAC, IP), what it is (cluster = System
-- resource id, appliance, host attributes as JSON) and how its install went.
CREATE TABLE hosts (
    name TEXT PRIMARY KEY NOT NULL,
    mac TEXT UNIQUE,
    ip TEXT,
    cluster TEXT NOT NULL,
    appliance TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    install_state TEXT,
    install_ms BIGINT,
    install_message TEXT
);
CREATE INDEX hosts_by_ip ON hosts (ip);
CREATE INDEX hosts_by_cluster ON hosts (cluster);
