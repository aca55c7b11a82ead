//! The reservation book: the site's P-nodes and the reservations admitted on them, kept in the
//! store and changed only under the site lock, so concurrent requests — threads of one service
//! or several services on one PostgreSQL — never double-allocate capacity, a network id, a
//! subnet, a MAC or an IP.
//!
//! Every change is one transaction: take the lock, bring the cached [`SiteState`] up to date
//! (reloaded from the rows when another process moved the generation on), run the pure
//! placement operation, write the rows it changed, bump the generation, commit. An operation
//! that fails writes nothing and leaves the cache as it was.

use std::sync::{Mutex, MutexGuard};

use diesel::prelude::*;
use vcds_placement::{
    admit, Affected, Allocation, ClusterRequest, ConfigError, LifecycleError, PNode, PNodeState,
    Refusal, Resources, RestoreError, SiteConfig, SiteState, Timestamp,
};

use crate::{Store, StoreError};

diesel::table! {
    pnodes (name) {
        name -> Text,
        cpu -> BigInt,
        memory_mib -> BigInt,
        disk_gib -> BigInt,
        labels -> Text,
        gw_capable -> Bool,
        state -> Text,
    }
}

diesel::table! {
    reservations (id) {
        id -> Text,
        start_s -> BigInt,
        end_s -> BigInt,
        allocation -> Text,
        admitted_ms -> BigInt,
        released_ms -> Nullable<BigInt>,
        release_reason -> Nullable<Text>,
    }
}

diesel::table! {
    site_lock (id) {
        id -> Integer,
        generation -> BigInt,
    }
}

/// One stored P-node.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = pnodes)]
pub struct PNodeRow {
    pub name: String,
    pub cpu: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    /// JSON array of strings.
    pub labels: String,
    pub gw_capable: bool,
    /// `up`, `down` or `maintenance`.
    pub state: String,
}

/// One stored reservation; `allocation` is the placement's [`Allocation`] as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = reservations)]
pub struct ReservationRow {
    pub id: String,
    pub start_s: i64,
    pub end_s: i64,
    pub allocation: String,
    pub admitted_ms: i64,
    pub released_ms: Option<i64>,
    pub release_reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("the stored site cannot be restored: {0}")]
    Restore(#[from] RestoreError),
    #[error("the site configuration or P-node inventory is not valid: {0}")]
    Inventory(#[from] ConfigError),
    #[error("stored row is not valid: {0}")]
    Corrupt(String),
}

impl From<r2d2::Error> for BookError {
    fn from(e: r2d2::Error) -> Self {
        BookError::Store(e.into())
    }
}

impl From<diesel::result::Error> for BookError {
    fn from(e: diesel::result::Error) -> Self {
        BookError::Store(StoreError::Query(e))
    }
}

fn state_name(state: PNodeState) -> &'static str {
    match state {
        PNodeState::Up => "up",
        PNodeState::Down => "down",
        PNodeState::Maintenance => "maintenance",
    }
}

fn parse_state(text: &str) -> Result<PNodeState, BookError> {
    match text {
        "up" => Ok(PNodeState::Up),
        "down" => Ok(PNodeState::Down),
        "maintenance" => Ok(PNodeState::Maintenance),
        other => Err(BookError::Corrupt(format!("P-node state {other:?}"))),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PNodeRow {
    fn of(p: &PNode) -> PNodeRow {
        PNodeRow {
            name: p.name.clone(),
            cpu: i64::from(p.capacity.cpu),
            memory_mib: to_i64(p.capacity.memory_mib),
            disk_gib: to_i64(p.capacity.disk_gib),
            labels: serde_json::to_string(&p.labels).unwrap_or_else(|_| "[]".into()),
            gw_capable: p.gw_capable,
            state: state_name(p.state).to_string(),
        }
    }

    fn pnode(&self) -> Result<PNode, BookError> {
        let corrupt = |what: &str| BookError::Corrupt(format!("P-node {:?}: {what}", self.name));
        let capacity = Resources::new(
            u32::try_from(self.cpu).map_err(|_| corrupt("cpu"))?,
            u64::try_from(self.memory_mib).map_err(|_| corrupt("memory"))?,
            u64::try_from(self.disk_gib).map_err(|_| corrupt("disk"))?,
        );
        let labels: Vec<String> =
            serde_json::from_str(&self.labels).map_err(|_| corrupt("labels"))?;
        let mut pnode = PNode::new(&self.name, capacity)
            .with_labels(labels)
            .gw_capable(self.gw_capable);
        pnode.state = parse_state(&self.state)?;
        Ok(pnode)
    }
}

fn allocation_of(row: &ReservationRow) -> Result<Allocation, BookError> {
    serde_json::from_str(&row.allocation)
        .map_err(|e| BookError::Corrupt(format!("reservation {:?}: {e}", row.id)))
}

/// A row change an operation asks for; written in the operation's transaction.
enum Write {
    Insert(Box<Allocation>),
    Release { id: String, reason: String },
    SetEnd { id: String, end: Timestamp },
    PNode(PNodeRow),
}

/// What the book's connection must do, written once for both backends by `book_queries!`;
/// only the lock differs.
trait BookConnection {
    /// Runs `f` in a transaction that holds the site lock.
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, BookError>,
    ) -> Result<T, BookError>;
    fn generation(&mut self) -> Result<i64, BookError>;
    fn load(&mut self, config: &SiteConfig) -> Result<SiteState, BookError>;
    fn write(&mut self, writes: Vec<Write>, now_ms: i64) -> Result<(), BookError>;
    fn sync_pnodes(&mut self, pnodes: &[PNode]) -> Result<Vec<String>, BookError>;
    fn rows(&mut self, all: bool) -> Result<Vec<ReservationRow>, BookError>;
}

macro_rules! book_queries {
    () => {
        fn generation(&mut self) -> Result<i64, BookError> {
            Ok(site_lock::table
                .find(1)
                .select(site_lock::generation)
                .first(self)?)
        }

        fn load(&mut self, config: &SiteConfig) -> Result<SiteState, BookError> {
            let pnodes = pnodes::table
                .order(pnodes::name)
                .select(PNodeRow::as_select())
                .load(self)?
                .iter()
                .map(PNodeRow::pnode)
                .collect::<Result<Vec<_>, _>>()?;
            let allocations = self
                .rows(false)?
                .iter()
                .map(allocation_of)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SiteState::restore(config.clone(), pnodes, allocations)?)
        }

        fn rows(&mut self, all: bool) -> Result<Vec<ReservationRow>, BookError> {
            let mut query = reservations::table
                .order(reservations::id)
                .select(ReservationRow::as_select())
                .into_boxed();
            if !all {
                query = query.filter(reservations::released_ms.is_null());
            }
            Ok(query.load(self)?)
        }

        fn write(&mut self, writes: Vec<Write>, now_ms: i64) -> Result<(), BookError> {
            for write in writes {
                match write {
                    Write::Insert(a) => {
                        let allocation = serde_json::to_string(&a)
                            .map_err(|e| BookError::Corrupt(e.to_string()))?;
                        diesel::insert_into(reservations::table)
                            .values(ReservationRow {
                                id: a.reservation.clone(),
                                start_s: a.window.start,
                                end_s: a.window.end,
                                allocation,
                                admitted_ms: now_ms,
                                released_ms: None,
                                release_reason: None,
                            })
                            .execute(self)?;
                    }
                    Write::Release { id, reason } => {
                        diesel::update(reservations::table.find(&id))
                            .set((
                                reservations::released_ms.eq(now_ms),
                                reservations::release_reason.eq(reason),
                            ))
                            .execute(self)?;
                    }
                    Write::SetEnd { id, end } => {
                        let row: ReservationRow = reservations::table
                            .find(&id)
                            .select(ReservationRow::as_select())
                            .first(self)?;
                        let mut a = allocation_of(&row)?;
                        a.window.end = end;
                        let allocation = serde_json::to_string(&a)
                            .map_err(|e| BookError::Corrupt(e.to_string()))?;
                        diesel::update(reservations::table.find(&id))
                            .set((
                                reservations::end_s.eq(end),
                                reservations::allocation.eq(allocation),
                            ))
                            .execute(self)?;
                    }
                    Write::PNode(row) => {
                        diesel::insert_into(pnodes::table)
                            .values(&row)
                            .on_conflict(pnodes::name)
                            .do_update()
                            .set(&row)
                            .execute(self)?;
                    }
                }
            }
            diesel::update(site_lock::table.find(1))
                .set(site_lock::generation.eq(site_lock::generation + 1))
                .execute(self)?;
            Ok(())
        }

        fn sync_pnodes(&mut self, inventory: &[PNode]) -> Result<Vec<String>, BookError> {
            let stored = pnodes::table.select(PNodeRow::as_select()).load(self)?;
            let mut writes = Vec::new();
            let mut retired = Vec::new();
            for p in inventory {
                let mut row = PNodeRow::of(p);
                // The inventory gives what a P-node is; whether it is up is the site's record.
                if let Some(old) = stored.iter().find(|s| s.name == p.name) {
                    row.state = old.state.clone();
                }
                if stored.iter().all(|s| *s != row) {
                    writes.push(Write::PNode(row));
                }
            }
            // Gone from the inventory: kept for the reservations that name them, but down.
            for old in &stored {
                if inventory.iter().all(|p| p.name != old.name) && old.state != "down" {
                    retired.push(old.name.clone());
                    writes.push(Write::PNode(PNodeRow {
                        state: "down".into(),
                        ..old.clone()
                    }));
                }
            }
            if !writes.is_empty() {
                self.write(writes, 0)?;
            }
            Ok(retired)
        }
    };
}

impl BookConnection for SqliteConnection {
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, BookError>,
    ) -> Result<T, BookError> {
        // BEGIN IMMEDIATE takes SQLite's write lock at once; busy_timeout makes others wait.
        self.immediate_transaction(f)
    }
    book_queries!();
}

impl BookConnection for PgConnection {
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, BookError>,
    ) -> Result<T, BookError> {
        self.transaction(|conn| {
            site_lock::table
                .find(1)
                .select(site_lock::generation)
                .for_update()
                .first::<i64>(conn)?;
            f(conn)
        })
    }
    book_queries!();
}

struct Cached {
    generation: i64,
    state: SiteState,
}

/// The reservation book of one site over a [`Store`]. Cheap reads come from the cached state;
/// every change goes through the site lock.
pub struct ReservationBook {
    store: Store,
    config: SiteConfig,
    cache: Mutex<Option<Cached>>,
}

impl ReservationBook {
    /// Opens the book and records the site's P-node inventory: new P-nodes are added up,
    /// known ones keep their state, stored ones missing from `inventory` are marked down (their
    /// reservations stay, for the provider to see). Logs those.
    pub fn open(
        store: Store,
        config: SiteConfig,
        inventory: &[PNode],
    ) -> Result<ReservationBook, BookError> {
        // Validates the configuration and the inventory before anything is written.
        SiteState::new(config.clone(), inventory.to_vec())?;
        let retired = with_conn!(&store, |conn| conn
            .locked(|conn| conn.sync_pnodes(inventory)))?;
        for name in retired {
            tracing::warn!(pnode = %name, "P-node no longer in the inventory: marked down");
        }
        let book = ReservationBook {
            store,
            config,
            cache: Mutex::new(None),
        };
        book.read(|_| ())?;
        Ok(book)
    }

    pub fn config(&self) -> &SiteConfig {
        &self.config
    }

    fn cache(&self) -> MutexGuard<'_, Option<Cached>> {
        // A panic while holding the lock leaves at worst a stale cache, which the generation
        // check replaces.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` on the current site state under the site lock and writes what it asks for.
    fn transact<T>(
        &self,
        now_ms: i64,
        op: impl FnOnce(&mut SiteState, &mut Vec<Write>) -> Result<T, BookError>,
    ) -> Result<T, BookError> {
        let mut cache = self.cache();
        let cached = cache.take();
        let config = &self.config;
        let done = with_conn!(&self.store, |conn| conn.locked(|conn| {
            let generation = conn.generation()?;
            let mut state = match cached {
                Some(c) if c.generation == generation => c.state,
                _ => conn.load(config)?,
            };
            let mut writes = Vec::new();
            // A failed operation leaves the state as it was (placement's contract): keep it.
            let outcome = op(&mut state, &mut writes);
            let generation = if outcome.is_ok() && !writes.is_empty() {
                conn.write(writes, now_ms)?;
                generation + 1
            } else {
                generation
            };
            Ok((outcome, Cached { generation, state }))
        }));
        // A database error drops the cache: the next operation reloads from the rows.
        let (outcome, fresh) = done?;
        *cache = Some(fresh);
        outcome
    }

    /// Reads the current site state (reloaded if another process changed it).
    pub fn read<T>(&self, f: impl FnOnce(&SiteState) -> T) -> Result<T, BookError> {
        let mut cache = self.cache();
        let generation = with_conn!(&self.store, |conn| conn.generation())?;
        if cache.as_ref().map(|c| c.generation) != Some(generation) {
            let state = with_conn!(&self.store, |conn| conn
                .locked(|conn| Ok((conn.generation()?, conn.load(&self.config)?))))?;
            *cache = Some(Cached {
                generation: state.0,
                state: state.1,
            });
        }
        let c = cache
            .as_ref()
            .ok_or_else(|| BookError::Corrupt("site state not loaded".into()))?;
        Ok(f(&c.state))
    }

    /// Admits `request` at `now` and records the reservation, or refuses it with the reason;
    /// a refusal reserves nothing.
    pub fn admit(&self, request: &ClusterRequest, now: Timestamp) -> Result<Allocation, BookError> {
        self.transact(now * 1000, |state, writes| {
            let allocation = admit(state, request, now)?;
            state
                .apply(allocation.clone())
                .map_err(|e| BookError::Corrupt(e.to_string()))?;
            writes.push(Write::Insert(Box::new(allocation.clone())));
            Ok(allocation)
        })
    }

    /// What [`ReservationBook::admit`] would answer, reserving nothing (validate-only).
    pub fn check(&self, request: &ClusterRequest, now: Timestamp) -> Result<Allocation, BookError> {
        self.read(|state| admit(state, request, now))?
            .map_err(BookError::from)
    }

    /// Ends reservation `id` now; `None` if it is not active (released already, or never).
    pub fn release(
        &self,
        id: &str,
        now: Timestamp,
        reason: &str,
    ) -> Result<Option<Allocation>, BookError> {
        self.transact(now * 1000, |state, writes| match state.release(id) {
            Ok(allocation) => {
                writes.push(Write::Release {
                    id: id.to_string(),
                    reason: reason.to_string(),
                });
                Ok(Some(allocation))
            }
            Err(LifecycleError::UnknownReservation(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })
    }

    /// Releases every reservation whose window ended at or before `now`. The clock calls this
    /// every second, so the site lock is taken only when something has ended.
    pub fn expire(&self, now: Timestamp) -> Result<Vec<String>, BookError> {
        if !self.read(|state| state.reservations().any(|r| r.window.end <= now))? {
            return Ok(Vec::new());
        }
        self.transact(now * 1000, |state, writes| {
            let ended = state.expire(now);
            writes.extend(ended.iter().map(|id| Write::Release {
                id: id.clone(),
                reason: "reservation ended".into(),
            }));
            Ok(ended)
        })
    }

    /// Moves the end of reservation `id` to `new_end`, or refuses naming the conflict.
    pub fn extend(&self, id: &str, new_end: Timestamp, now: Timestamp) -> Result<(), BookError> {
        self.transact(now * 1000, |state, writes| {
            state.extend(id, new_end, now)?;
            writes.push(Write::SetEnd {
                id: id.to_string(),
                end: new_end,
            });
            Ok(())
        })
    }

    /// Marks P-node `name` up, down or in maintenance; lists the running and future
    /// reservations that a P-node leaving service hits.
    pub fn set_pnode_state(
        &self,
        name: &str,
        pnode_state: PNodeState,
        now: Timestamp,
    ) -> Result<Vec<Affected>, BookError> {
        self.transact(now * 1000, |state, writes| {
            let affected = state.set_pnode_state(name, pnode_state, now)?;
            if let Some(p) = state.pnode(name) {
                writes.push(Write::PNode(PNodeRow::of(p)));
            }
            Ok(affected)
        })
    }

    /// The active reservation `id`.
    pub fn reservation(&self, id: &str) -> Result<Option<Allocation>, BookError> {
        self.read(|state| state.reservation(id).cloned())
    }

    /// Every reservation row, released ones too when `all`, by id: for audits and tests.
    pub fn rows(&self, all: bool) -> Result<Vec<ReservationRow>, BookError> {
        with_conn!(&self.store, |conn| conn.rows(all))
    }
}
