DROP TABLE site_lock;
DROP TABLE reservations;
DROP TABLE pnodes;
