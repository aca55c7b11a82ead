//! The site state: P-nodes with their calendars and the admitted reservations. Every method
//! that can fail validates first and mutates only on success, so an error leaves the state
//! exactly as it was.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::allocation::Allocation;
use crate::calendar::{Calendar, Calendars};
use crate::error::{ApplyError, ConfigError, LifecycleError, RestoreError, Shortage};
use crate::model::{
    MacAddr, PNode, PNodeState, ReservationId, SiteConfig, Timestamp, Window, MAX_PREFIX_LEN,
};
use crate::pools::pool_range_is_valid;

/// A reservation touched by a P-node leaving service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    pub reservation: ReservationId,
    pub window: Window,
    /// Names of the cluster's nodes on that P-node.
    pub nodes: Vec<String>,
    /// The P-node is the cluster's GW-node.
    pub gateway: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredSiteState")]
pub struct SiteState {
    config: SiteConfig,
    /// Sorted by name: index order is name order, which makes tie-breaking deterministic.
    pnodes: Vec<PNode>,
    /// Calendar of each P-node, by P-node index.
    calendars: Calendars,
    reservations: BTreeMap<ReservationId, Allocation>,
    /// Bumped by every change; allocations carry the generation they were admitted against.
    generation: u64,
}

/// A site state as persisted, before its invariants are checked.
#[derive(Deserialize)]
struct StoredSiteState {
    config: SiteConfig,
    pnodes: Vec<PNode>,
    calendars: Calendars,
    reservations: BTreeMap<ReservationId, Allocation>,
    generation: u64,
}

impl TryFrom<StoredSiteState> for SiteState {
    type Error = String;

    fn try_from(s: StoredSiteState) -> Result<Self, String> {
        validate_config(&s.config).map_err(|e| e.to_string())?;
        if !s.pnodes.windows(2).all(|w| w[0].name < w[1].name) {
            return Err("P-nodes are not sorted by unique name".into());
        }
        if s.calendars.pnode_count() != s.pnodes.len() {
            return Err("calendars do not match the P-nodes".into());
        }
        let bookings: usize = s
            .reservations
            .values()
            .map(|r| r.demand_per_pnode().len())
            .sum();
        if bookings != s.calendars.len() {
            return Err("calendars do not match the reservations".into());
        }
        Ok(SiteState {
            config: s.config,
            pnodes: s.pnodes,
            calendars: s.calendars,
            reservations: s.reservations,
            generation: s.generation,
        })
    }
}

impl SiteState {
    pub fn new(config: SiteConfig, mut pnodes: Vec<PNode>) -> Result<Self, ConfigError> {
        validate_config(&config)?;
        pnodes.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = pnodes.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(ConfigError::DuplicatePNode(pair[0].name.clone()));
        }
        Ok(SiteState {
            config,
            calendars: Calendars::new(pnodes.len()),
            pnodes,
            reservations: BTreeMap::new(),
            generation: 0,
        })
    }

    /// The state holding `reservations`, as a store persisted them: admitted earlier, so not
    /// admitted again; refused only if one names an unknown P-node or repeats an id.
    pub fn restore(
        config: SiteConfig,
        pnodes: Vec<PNode>,
        reservations: impl IntoIterator<Item = Allocation>,
    ) -> Result<Self, RestoreError> {
        let mut state = SiteState::new(config, pnodes)?;
        let mut bookings = Vec::new();
        for allocation in reservations {
            for (name, demand) in allocation.demand_per_pnode() {
                let index = state
                    .index_of(name)
                    .ok_or_else(|| RestoreError::UnknownPNode {
                        reservation: allocation.reservation.clone(),
                        pnode: name.to_string(),
                    })?;
                bookings.push((
                    index,
                    allocation.window,
                    demand,
                    allocation.reservation.clone(),
                ));
            }
            let id = allocation.reservation.clone();
            if state.reservations.insert(id.clone(), allocation).is_some() {
                return Err(RestoreError::Duplicate(id));
            }
        }
        state.calendars = Calendars::from_bookings(state.pnodes.len(), bookings);
        Ok(state)
    }

    pub fn config(&self) -> &SiteConfig {
        &self.config
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// P-nodes in name order.
    pub fn pnodes(&self) -> impl Iterator<Item = &PNode> {
        self.pnodes.iter()
    }

    pub fn pnode(&self, name: &str) -> Option<&PNode> {
        self.index_of(name).map(|i| &self.pnodes[i])
    }

    pub fn calendar(&self, name: &str) -> Option<Calendar<'_>> {
        self.index_of(name).map(|i| self.calendars.calendar(i))
    }

    pub(crate) fn pnode_entry(&self, index: usize) -> Option<(&PNode, Calendar<'_>)> {
        self.pnodes
            .get(index)
            .map(|p| (p, self.calendars.calendar(index)))
    }

    /// Admitted reservations in id order.
    pub fn reservations(&self) -> impl Iterator<Item = &Allocation> {
        self.reservations.values()
    }

    pub fn reservation(&self, id: &str) -> Option<&Allocation> {
        self.reservations.get(id)
    }

    /// Number of P-node bookings (one per reservation per P-node it uses).
    pub fn booking_count(&self) -> usize {
        self.calendars.len()
    }

    /// Approximate heap bytes held by the calendars (the part that grows with reservations).
    pub fn calendar_heap_bytes(&self) -> usize {
        self.calendars.heap_bytes()
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.pnodes
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Records an allocation from [`crate::admit`] made against this very generation.
    pub fn apply(&mut self, allocation: Allocation) -> Result<(), ApplyError> {
        if allocation.generation != self.generation {
            return Err(ApplyError::Stale {
                admitted_at: allocation.generation,
                current: self.generation,
            });
        }
        // By P-node name, hence by P-node index, as `Calendars::add` wants.
        let bookings = allocation
            .demand_per_pnode()
            .into_iter()
            .map(|(name, demand)| {
                self.index_of(name)
                    .map(|index| (index, demand))
                    .ok_or_else(|| ApplyError::UnknownPNode(name.to_string()))
            })
            .collect::<Result<Vec<_>, ApplyError>>()?;
        self.calendars
            .add(&allocation.reservation, allocation.window, &bookings);
        self.reservations
            .insert(allocation.reservation.clone(), allocation);
        self.bump();
        Ok(())
    }

    /// Terminates a reservation now (early or at its end): its P-node capacity and pool ids are
    /// free again. Admissions never start in the past, so dropping the past part is exact.
    pub fn release(&mut self, id: &str) -> Result<Allocation, LifecycleError> {
        let allocation = self
            .reservations
            .remove(id)
            .ok_or_else(|| LifecycleError::UnknownReservation(id.to_string()))?;
        self.calendars.remove(id);
        self.bump();
        Ok(allocation)
    }

    /// Releases every reservation whose window ended at or before `now`; returns their ids.
    pub fn expire(&mut self, now: Timestamp) -> Vec<ReservationId> {
        let ended: Vec<ReservationId> = self
            .reservations
            .values()
            .filter(|r| r.window.end <= now)
            .map(|r| r.reservation.clone())
            .collect();
        if ended.is_empty() {
            return ended;
        }
        self.reservations.retain(|_, r| r.window.end > now);
        self.calendars.expire(now);
        self.bump();
        ended
    }

    /// Moves the end of a running or future reservation later, if every P-node it uses has the
    /// capacity and no overlapping reservation holds its network id, subnet or MACs.
    pub fn extend(
        &mut self,
        id: &str,
        new_end: Timestamp,
        now: Timestamp,
    ) -> Result<(), LifecycleError> {
        let allocation = self
            .reservations
            .get(id)
            .ok_or_else(|| LifecycleError::UnknownReservation(id.to_string()))?;
        let end = allocation.window.end;
        if end <= now {
            return Err(LifecycleError::AlreadyEnded {
                reservation: id.to_string(),
                end,
                now,
            });
        }
        if new_end <= end {
            return Err(LifecycleError::NotLater {
                reservation: id.to_string(),
                end,
                new_end,
            });
        }
        let extension = Window::new(end, new_end);
        let conflict =
            |conflicting: &str, shortage, pnode: Option<&str>| LifecycleError::Conflict {
                reservation: id.to_string(),
                conflicting: conflicting.to_string(),
                shortage,
                pnode: pnode.map(str::to_string),
            };
        let mut scratch = Vec::new();
        let demand = allocation.demand_per_pnode();
        for (name, demand) in &demand {
            let index = self
                .index_of(name)
                .ok_or_else(|| LifecycleError::UnknownPNode(name.to_string()))?;
            let pnode = &self.pnodes[index];
            if pnode.state != PNodeState::Up {
                return Err(LifecycleError::PNodeNotUp {
                    reservation: id.to_string(),
                    pnode: name.to_string(),
                });
            }
            if let Some((booking, dimension)) = self.calendars.calendar(index).first_overflow(
                extension,
                demand,
                &pnode.capacity,
                &mut scratch,
            ) {
                return Err(conflict(booking.reservation, dimension.into(), Some(name)));
            }
        }
        for other in self
            .reservations
            .values()
            .filter(|r| r.reservation != id && r.window.overlaps(&extension))
        {
            let shortage = if other.network_id == allocation.network_id {
                Shortage::NetworkIds
            } else if other.subnet.overlaps(&allocation.subnet) {
                Shortage::Subnets
            } else if other.mac_block.overlaps(&allocation.mac_block) {
                Shortage::Macs
            } else {
                continue;
            };
            return Err(conflict(&other.reservation, shortage, None));
        }
        let indices: Vec<usize> = demand
            .keys()
            .filter_map(|name| self.index_of(name))
            .collect();
        for index in indices {
            self.calendars.set_end(index, id, new_end);
        }
        if let Some(allocation) = self.reservations.get_mut(id) {
            allocation.window.end = new_end;
        }
        self.bump();
        Ok(())
    }

    /// Sets a P-node's state. When it leaves service (down or maintenance) returns the running
    /// and future reservations that have nodes on it or use it as GW-node, in id order.
    pub fn set_pnode_state(
        &mut self,
        name: &str,
        state: PNodeState,
        now: Timestamp,
    ) -> Result<Vec<Affected>, LifecycleError> {
        let index = self
            .index_of(name)
            .ok_or_else(|| LifecycleError::UnknownPNode(name.to_string()))?;
        self.pnodes[index].state = state;
        self.bump();
        if state == PNodeState::Up {
            return Ok(Vec::new());
        }
        Ok(self
            .reservations
            .values()
            .filter(|r| r.window.end > now)
            .filter_map(|r| {
                let nodes: Vec<String> = r
                    .nodes
                    .iter()
                    .filter(|n| n.pnode == name)
                    .map(|n| n.name.clone())
                    .collect();
                let gateway = r.gateway.pnode == name;
                (gateway || !nodes.is_empty()).then(|| Affected {
                    reservation: r.reservation.clone(),
                    window: r.window,
                    nodes,
                    gateway,
                })
            })
            .collect())
    }
}

fn validate_config(config: &SiteConfig) -> Result<(), ConfigError> {
    if !pool_range_is_valid(&config.network_pool) {
        return Err(ConfigError::BadNetworkPool(config.network_pool.clone()));
    }
    let supernet = config.supernet;
    if supernet.prefix_len > MAX_PREFIX_LEN || !supernet.is_aligned() {
        return Err(ConfigError::BadSupernet(supernet));
    }
    let prefix_len = config.default_prefix_len;
    if !supernet.can_hold(prefix_len) {
        return Err(ConfigError::BadDefaultPrefix {
            prefix_len,
            supernet,
        });
    }
    let prefix = MacAddr([
        config.mac_prefix[0],
        config.mac_prefix[1],
        config.mac_prefix[2],
        0,
        0,
        0,
    ]);
    if !prefix.is_unicast() || !prefix.is_locally_administered() {
        return Err(ConfigError::BadMacPrefix(config.mac_prefix));
    }
    if config.search_horizon_secs < 0 {
        return Err(ConfigError::NegativeHorizon(config.search_horizon_secs));
    }
    Ok(())
}
