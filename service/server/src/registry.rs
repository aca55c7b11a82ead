//! The live WS-Resources: held in memory for the read path, written through to the store.
//!
//! Invariant: a change is in the store before it is visible in memory, so what a client has
//! been told survives a restart. Writers are serialized by one async lock; readers never wait
//! for the database.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use vcds_store::{ResourceRow, Store, StoreError};
use vcds_wsrf::Epr;

/// The singleton Portal's id.
pub const PORTAL_ID: &str = "portal";

/// A writable resource property's stored values (serialized elements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProperty {
    pub ns: String,
    pub local: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    pub producer: String,
    pub consumer: Epr,
    /// `None` subscribes to every topic of the producer.
    pub topic: Option<(String, String)>,
    /// The subscriber had the admin role, so its notifications list every System.
    #[serde(default)]
    pub subscriber_admin: bool,
}

/// The kind-specific part of a resource, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum State {
    Portal,
    System {
        props: Vec<StoredProperty>,
        /// Absent in rows written before the CDDLM operations existed.
        #[serde(default)]
        deployment: Deployment,
    },
    Subscription(SubscriptionState),
}

/// CDDLM lifecycle state of a System (GFD.65 `cmp:State`), plus the vcds extension suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    #[default]
    Instantiated,
    Initialized,
    Running,
    Suspended,
    Terminated,
    Failed,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Instantiated => "instantiated",
            Lifecycle::Initialized => "initialized",
            Lifecycle::Running => "running",
            Lifecycle::Suspended => "suspended",
            Lifecycle::Terminated => "terminated",
            Lifecycle::Failed => "failed",
        }
    }
}

/// Where a System's virtual cluster is, finer than the lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Reserved,
    WaitingForStart,
    Provisioning,
    Installing,
    Ready,
    Suspended,
    TearingDown,
    Released,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Reserved => "reserved",
            Phase::WaitingForStart => "waiting-for-start",
            Phase::Provisioning => "provisioning",
            Phase::Installing => "installing",
            Phase::Ready => "ready",
            Phase::Suspended => "suspended",
            Phase::TearingDown => "tearing-down",
            Phase::Released => "released",
            Phase::Failed => "failed",
        }
    }
}

/// A file added with AddFile; `data` is base64 so the JSON row stays compact text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedFile {
    pub mimetype: String,
    pub data: String,
}

/// The CDDLM side of a System: lifecycle, the accepted descriptor and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Deployment {
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub files: BTreeMap<String, AddedFile>,
    /// The CDL text accepted by Initialize and the name it was resolved under.
    #[serde(default)]
    pub descriptor: Option<(String, String)>,
    /// Boxed: most stored resources are not Systems and should not pay for its size.
    #[serde(default)]
    pub spec: Option<Box<vcds_cdl::cluster::ClusterSpec>>,
    #[serde(default)]
    pub started: Option<DateTime<Utc>>,
    #[serde(default)]
    pub terminated: Option<DateTime<Utc>>,
    /// The placement admitted at Initialize; kept after its release to show where it was.
    #[serde(default)]
    pub allocation: Option<Box<vcds_placement::Allocation>>,
    /// When the reservation was released (Terminate, failure, its end); `None` while held.
    #[serde(default)]
    pub released: Option<DateTime<Utc>>,
    /// Why the deployment failed, for a System in the failed state.
    #[serde(default)]
    pub failure: Option<String>,
}

impl Deployment {
    /// The reservation window while the reservation is held.
    pub fn held_window(&self) -> Option<vcds_placement::Window> {
        match (&self.allocation, self.released) {
            (Some(a), None) => Some(a.window),
            _ => None,
        }
    }
}

impl State {
    pub fn kind(&self) -> &'static str {
        match self {
            State::Portal => "portal",
            State::System { .. } => "system",
            State::Subscription(_) => "subscription",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub owner: String,
    pub created: DateTime<Utc>,
    pub termination: Option<DateTime<Utc>>,
    pub state: State,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored resource {id} cannot be read: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("the store task failed: {0}")]
    Blocking(String),
}

fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Resource {
    fn to_row(&self) -> Result<ResourceRow, RegistryError> {
        let state = serde_json::to_string(&self.state).map_err(|e| RegistryError::Corrupt {
            id: self.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(ResourceRow {
            id: self.id.clone(),
            kind: self.state.kind().to_string(),
            owner: self.owner.clone(),
            created_ms: to_ms(self.created),
            termination_ms: self.termination.map(to_ms),
            state,
        })
    }

    fn from_row(row: ResourceRow) -> Result<Resource, RegistryError> {
        let state: State =
            serde_json::from_str(&row.state).map_err(|e| RegistryError::Corrupt {
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
            let r = Resource::from_row(row)?;
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
            store.put(&portal.to_row()?)?;
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
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| RegistryError::Blocking(e.to_string()))?
            .map_err(RegistryError::from)
    }

    /// Stores a new or changed resource, then publishes it.
    pub async fn put(&self, resource: Resource) -> Result<Arc<Resource>, RegistryError> {
        let _w = self.writer.lock().await;
        self.put_locked(resource).await
    }

    async fn put_locked(&self, resource: Resource) -> Result<Arc<Resource>, RegistryError> {
        let row = resource.to_row()?;
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
