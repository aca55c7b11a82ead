//! The persistent store of vcds: the `resources` table, the roll catalog, the hosts and the
//! reservation book (P-nodes, reservations) behind
//! diesel, on SQLite (the embedded default, bundled) or PostgreSQL (chosen by URL). Migrations
//! are embedded and applied on open.
//!
//! Calls block; async callers run them through [`blocking::run`], never on an API worker.

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub mod blocking;
#[cfg(feature = "testing")]
pub mod testing;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

diesel::table! {
    resources (id) {
        id -> Text,
        kind -> Text,
        owner -> Text,
        created_ms -> BigInt,
        termination_ms -> Nullable<BigInt>,
        state -> Text,
    }
}

/// One stored WS-Resource.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = resources, treat_none_as_null = true)]
pub struct ResourceRow {
    pub id: String,
    pub kind: String,
    pub owner: String,
    pub created_ms: i64,
    pub termination_ms: Option<i64>,
    pub state: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither sqlite://PATH (or a file path) nor postgres://…")]
    BadUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("applying migrations failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Connect(e.to_string())
    }
}

/// A connection pool on one of the two supported databases.
#[derive(Clone)]
pub enum Store {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the store uses;
/// diesel's query builder is generic, so each query is written once for both.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {
        match $store {
            Store::Sqlite(pool) => {
                let $conn = &mut *pool.get()?;
                $body
            }
            Store::Postgres(pool) => {
                let $conn = &mut *pool.get()?;
                $body
            }
        }
    };
}

// After `with_conn!`, which it uses.
mod book;
mod catalog;
pub use book::{BookError, PNodeRow, ReservationBook, ReservationRow};
pub use catalog::{HostRow, RollFileRow, RollRow};

/// SQLite settings for a server: WAL so readers don't block the writer, and a busy timeout so
/// concurrent writers wait instead of failing.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        // busy_timeout first: switching to WAL itself needs the lock another connection may hold.
        conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Store {
    /// Opens the store at `url` and brings its schema up to date.
    /// `sqlite://PATH`, `sqlite::memory:` or a plain path → SQLite; `postgres://` or `postgresql://` → PostgreSQL.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = Pool::builder()
                .max_size(8)
                .connection_timeout(std::time::Duration::from_secs(10))
                .build(ConnectionManager::<PgConnection>::new(url))?;
            Store::Postgres(pool)
        } else {
            let path = match url {
                "sqlite::memory:" => ":memory:",
                _ => url.strip_prefix("sqlite://").unwrap_or(url),
            };
            if path.is_empty() || path.contains("://") {
                return Err(StoreError::BadUrl(url.to_string()));
            }
            let pool = Pool::builder()
                .max_size(if path == ":memory:" { 1 } else { 4 })
                .connection_customizer(Box::new(SqlitePragmas))
                .build(ConnectionManager::<SqliteConnection>::new(path))?;
            Store::Sqlite(pool)
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let applied = with_conn!(self, |conn| conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| StoreError::Migration(e.to_string()))?);
        if applied > 0 {
            tracing::info!(
                applied,
                backend = self.backend(),
                "database migrations applied"
            );
        }
        Ok(())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Every stored resource, ordered by creation (the order ActiveSystems lists them in).
    pub fn load_all(&self) -> Result<Vec<ResourceRow>, StoreError> {
        with_conn!(self, |conn| Ok(resources::table
            .order((resources::created_ms, resources::id))
            .select(ResourceRow::as_select())
            .load(conn)?))
    }

    pub fn get(&self, id: &str) -> Result<Option<ResourceRow>, StoreError> {
        with_conn!(self, |conn| Ok(resources::table
            .find(id)
            .select(ResourceRow::as_select())
            .first(conn)
            .optional()?))
    }

    /// Inserts the row, or replaces the stored row with the same id.
    pub fn put(&self, row: &ResourceRow) -> Result<(), StoreError> {
        with_conn!(self, |conn| {
            diesel::insert_into(resources::table)
                .values(row)
                .on_conflict(resources::id)
                .do_update()
                .set(row)
                .execute(conn)?;
            Ok(())
        })
    }

    /// Removes the rows with these ids in one transaction; returns how many existed.
    pub fn delete(&self, ids: &[String]) -> Result<usize, StoreError> {
        with_conn!(self, |conn| Ok(conn.transaction(|conn| {
            diesel::delete(resources::table.filter(resources::id.eq_any(ids))).execute(conn)
        })?))
    }
}
