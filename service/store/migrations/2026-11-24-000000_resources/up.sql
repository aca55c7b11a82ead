-- Every WS-Resource (portal, system, subscription) is one row; its kind-specific state is JSON.
-- Times are milliseconds since the Unix epoch so SQLite and PostgreSQL store them alike.
CREATE TABLE resources (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    termination_ms BIGINT,
    state TEXT NOT NULL
);
CREATE INDEX resources_by_termination ON resources (termination_ms);
