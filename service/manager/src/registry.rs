//! The live WS-Resources: held in memory for the read path, written through to the store.
//!
//! Invariant: a change is in the store before it is visible in memory, so what a client has
//! been told survives a restart. Writers are serialized by one async lock; readers never wait
//! for the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeZone, Utc};
use vcds_model::{Resource, State, PORTAL_ID};
use vcds_store::{ResourceRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored resource {id} cannot be read: {reason}")]
    Corrupt { id: String, reason: String },
    #[error(transparent)]
    Blocking(#[from] vcds_store::blocking::BlockingError),
}

fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn to_row(r: &Resource) -> Result<ResourceRow, RegistryError> {
    let state = serde_json::to_string(&r.state).map_err(|e| RegistryError::Corrupt {
        id: r.id.clone(),
        reason: e.to_string(),
    })?;
    Ok(ResourceRow {
        id: r.id.clone(),
        kind: r.state.kind().to_string(),
        owner: r.owner.clone(),
        created_ms: to_ms(r.created),
        termination_ms: r.termination.map(to_ms),
        state,
    })
}

fn from_row(row: ResourceRow) -> Result<Resource, RegistryError> {
    let state: State = serde_json::from_str(&row.state).map_err(|e| RegistryError::Corrupt {
        id: row.id.clone(),
        reason: e.to_string(),
    })?;
    Ok(Resource {
        id: row.id,
        owner: row.owner,
        created: from_ms(row.created_ms),
        termination: row.termination_ms.map(from_ms),
        state,
    })
}

pub struct Registry {
    store: Store,
    live: RwLock<HashMap<String, Arc<Resource>>>,
    writer: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Loads every stored resource and makes sure the Portal exists.
    pub fn open(store: Store) -> Result<Registry, RegistryError> {
        let mut live = HashMap::new();
        for row in store.load_all()? {
            let r = from_row(row)?;
            live.insert(r.id.clone(), Arc::new(r));
        }
        if !live.contains_key(PORTAL_ID) {
            let portal = Resource {
                id: PORTAL_ID.to_string(),
                owner: String::new(),
                created: Utc::now(),
                termination: None,
                state: State::Portal,
            };
            store.put(&to_row(&portal)?)?;
            live.insert(portal.id.clone(), Arc::new(portal));
        }
        Ok(Registry {
            store,
            live: RwLock::new(live),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Resource>> {
        self.read().get(id).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Resource>>> {
        // A poisoned lock only means a panic elsewhere; the map itself is always consistent.
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Resource>>> {
        self.live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resources matching `f`, oldest first.
    pub fn select(&self, f: impl Fn(&Resource) -> bool) -> Vec<Arc<Resource>> {
        let mut out: Vec<Arc<Resource>> = self.read().values().filter(|r| f(r)).cloned().collect();
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        out
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let store = self.store.clone();
        Ok(vcds_store::blocking::run(move || f(store)).await??)
    }

    /// Stores a new or changed resource, then publishes it.
    pub async fn put(&self, resource: Resource) -> Result<Arc<Resource>, RegistryError> {
        let _w = self.writer.lock().await;
        self.put_locked(resource).await
    }

    async fn put_locked(&self, resource: Resource) -> Result<Arc<Resource>, RegistryError> {
        let row = to_row(&resource)?;
        self.blocking(move |s| s.put(&row)).await?;
        let resource = Arc::new(resource);
        self.write_map()
            .insert(resource.id.clone(), resource.clone());
        Ok(resource)
    }

    /// Applies `change` to the current version of resource `id` under the writer lock, so
    /// concurrent updates of one resource never lose each other. `Ok(None)`: no such resource.
    pub async fn update<E: From<RegistryError>, T>(
        &self,
        id: &str,
        change: impl FnOnce(&Resource) -> Result<(Resource, T), E>,
    ) -> Result<Option<(Arc<Resource>, T)>, E> {
        let _w = self.writer.lock().await;
        let Some(current) = self.get(id) else {
            return Ok(None);
        };
        let (next, out) = change(&current)?;
        let stored = self.put_locked(next).await?;
        Ok(Some((stored, out)))
    }

    /// Removes resources; returns those that existed.
    pub async fn remove(&self, ids: Vec<String>) -> Result<Vec<Arc<Resource>>, RegistryError> {
        let _w = self.writer.lock().await;
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| self.read().contains_key(id))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let to_delete = ids.clone();
        self.blocking(move |s| s.delete(&to_delete)).await?;
        let mut map = self.write_map();
        Ok(ids.iter().filter_map(|id| map.remove(id)).collect())
    }

    /// Every live System, oldest first.
    pub fn systems(&self) -> Vec<Arc<Resource>> {
        self.select(Resource::is_system)
    }

    /// Ids of resources whose termination time is at or before `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<String> {
        self.read()
            .values()
            .filter(|r| r.termination.is_some_and(|t| t <= now))
            .map(|r| r.id.clone())
            .collect()
    }

    /// The earliest termination time of any resource.
    pub fn next_termination(&self) -> Option<DateTime<Utc>> {
        self.read().values().filter_map(|r| r.termination).min()
    }
}
