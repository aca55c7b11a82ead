//! Network id, subnet and MAC pools: lowest free value not held by a concurrent reservation.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::model::{IdRange, Ipv4Net, MacAddr, NetworkId, NetworkPool};

/// Size of the MAC suffix space under a three-octet prefix.
pub const MAC_SUFFIXES: u64 = 1 << 24;

/// A contiguous run of MACs under the site's prefix: suffixes `first .. first + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MacBlock {
    pub first: u32,
    pub count: u32,
}

impl MacBlock {
    pub fn mac(&self, prefix: [u8; 3], index: u32) -> MacAddr {
        let [_, a, b, c] = (self.first + index).to_be_bytes();
        MacAddr([prefix[0], prefix[1], prefix[2], a, b, c])
    }

    pub fn overlaps(&self, other: &MacBlock) -> bool {
        let end = u64::from(self.first) + u64::from(self.count);
        let other_end = u64::from(other.first) + u64::from(other.count);
        u64::from(self.first) < other_end && u64::from(other.first) < end
    }
}

/// Lowest `x` in `[first, last]` with `x % align == 0` such that `x .. x+len` stays inside the
/// range and misses every inclusive interval in `blocked`. Sorts `blocked` in place.
pub(crate) fn lowest_free(
    blocked: &mut [(u64, u64)],
    first: u64,
    last: u64,
    len: u64,
    align: u64,
) -> Option<u64> {
    let align = align.max(1);
    let len = len.max(1);
    let align_up = |x: u64| x.div_ceil(align).saturating_mul(align);
    blocked.sort_unstable();
    let mut candidate = align_up(first);
    for &(lo, hi) in blocked.iter() {
        if hi < candidate {
            continue;
        }
        // Sorted by start: if this interval starts after the candidate block, all later do too.
        if lo > candidate.saturating_add(len - 1) {
            break;
        }
        candidate = align_up(hi.saturating_add(1));
    }
    (candidate.checked_add(len - 1)? <= last).then_some(candidate)
}

/// Lowest id of `pool` not reserved, not always-excluded and not in `in_use`.
pub(crate) fn allocate_network_id(
    pool: &NetworkPool,
    in_use: impl Iterator<Item = u32>,
) -> Option<NetworkId> {
    let mut blocked: Vec<(u64, u64)> = pool
        .reserved
        .iter()
        .map(|r| (u64::from(r.first), u64::from(r.last)))
        .chain(
            pool.kind
                .always_excluded()
                .iter()
                .map(|&id| (u64::from(id), u64::from(id))),
        )
        .chain(in_use.map(|id| (u64::from(id), u64::from(id))))
        .collect();
    let id = lowest_free(
        &mut blocked,
        u64::from(pool.range.first),
        u64::from(pool.range.last),
        1,
        1,
    )?;
    Some(NetworkId {
        kind: pool.kind,
        id: u32::try_from(id).ok()?,
    })
}

/// Lowest aligned `/prefix_len` inside `supernet` overlapping none of `in_use`.
pub(crate) fn allocate_subnet<'a>(
    supernet: &Ipv4Net,
    prefix_len: u8,
    in_use: impl Iterator<Item = &'a Ipv4Net>,
) -> Option<Ipv4Net> {
    let size = Ipv4Net::new(Ipv4Addr::UNSPECIFIED, prefix_len).size();
    let mut blocked: Vec<(u64, u64)> = in_use
        .map(|n| (u64::from(n.first()), u64::from(n.last())))
        .collect();
    let first = lowest_free(
        &mut blocked,
        u64::from(supernet.first()),
        u64::from(supernet.last()),
        size,
        size,
    )?;
    Some(Ipv4Net::new(
        Ipv4Addr::from(u32::try_from(first).ok()?),
        prefix_len,
    ))
}

/// Lowest run of `count` MAC suffixes overlapping none of `in_use`.
pub(crate) fn allocate_macs<'a>(
    count: u32,
    in_use: impl Iterator<Item = &'a MacBlock>,
) -> Option<MacBlock> {
    let mut blocked: Vec<(u64, u64)> = in_use
        .filter(|b| b.count > 0)
        .map(|b| {
            (
                u64::from(b.first),
                u64::from(b.first) + u64::from(b.count) - 1,
            )
        })
        .collect();
    let first = lowest_free(&mut blocked, 0, MAC_SUFFIXES - 1, u64::from(count), 1)?;
    Some(MacBlock {
        first: u32::try_from(first).ok()?,
        count,
    })
}

/// Whether `pool`'s range and reserved ranges are well-formed and inside its kind's id space.
pub(crate) fn pool_range_is_valid(pool: &NetworkPool) -> bool {
    let widest = pool.kind.id_space();
    let valid = |r: &IdRange| r.first <= r.last;
    valid(&pool.range)
        && pool.range.first >= widest.first
        && pool.range.last <= widest.last
        && pool.reserved.iter().all(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_walks_gaps() {
        assert_eq!(lowest_free(&mut [], 0, 10, 1, 1), Some(0));
        assert_eq!(lowest_free(&mut [(0, 3), (5, 5)], 0, 10, 1, 1), Some(4));
        assert_eq!(lowest_free(&mut [(5, 5), (0, 3)], 0, 10, 2, 1), Some(6));
        assert_eq!(lowest_free(&mut [(0, 9)], 0, 10, 2, 1), None);
        assert_eq!(lowest_free(&mut [(0, 9)], 0, 10, 1, 1), Some(10));
        // Alignment: blocks of 4 aligned to 4, [2, 2] blocks the first.
        assert_eq!(lowest_free(&mut [(2, 2)], 0, 15, 4, 4), Some(4));
        // Nested and overlapping intervals.
        assert_eq!(
            lowest_free(&mut [(0, 10), (2, 4), (11, 11)], 0, 20, 1, 1),
            Some(12)
        );
    }

    #[test]
    fn vlan_pool_skips_0_1_4095_and_reserved() {
        let pool = NetworkPool::vlan(
            IdRange::new(2, 4094),
            vec![IdRange::new(2, 9), IdRange::single(11)],
        );
        let id = allocate_network_id(&pool, [10].into_iter()).map(|n| n.id);
        assert_eq!(id, Some(12));
        let tail = NetworkPool::vlan(IdRange::new(4094, 4094), Vec::new());
        assert_eq!(
            allocate_network_id(&tail, std::iter::empty()).map(|n| n.id),
            Some(4094)
        );
        assert_eq!(allocate_network_id(&tail, [4094].into_iter()), None);
    }

    #[test]
    fn vlan_whole_space_never_yields_0_1_4095() {
        let pool = NetworkPool::vlan(IdRange::new(0, 4095), Vec::new());
        assert_eq!(
            allocate_network_id(&pool, std::iter::empty()).map(|n| n.id),
            Some(2)
        );
        let used: Vec<u32> = (2..=4094).collect();
        assert_eq!(allocate_network_id(&pool, used.into_iter()), None);
        let vni = NetworkPool::vxlan(IdRange::new(0, 10), Vec::new());
        assert_eq!(
            allocate_network_id(&vni, std::iter::empty()).map(|n| n.id),
            Some(1)
        );
    }

    #[test]
    fn pool_ranges_must_fit_the_id_space() {
        assert!(pool_range_is_valid(&NetworkPool::vlan(
            IdRange::new(0, 4095),
            Vec::new()
        )));
        assert!(!pool_range_is_valid(&NetworkPool::vlan(
            IdRange::new(2, 4096),
            Vec::new()
        )));
        assert!(pool_range_is_valid(&NetworkPool::vxlan(
            IdRange::new(1, (1 << 24) - 1),
            Vec::new()
        )));
        assert!(!pool_range_is_valid(&NetworkPool::vxlan(
            IdRange::new(1, 1 << 24),
            Vec::new()
        )));
        assert!(!pool_range_is_valid(&NetworkPool::vxlan(
            IdRange::new(5, 4),
            Vec::new()
        )));
        let bad_reserved = NetworkPool::vlan(IdRange::new(2, 100), vec![IdRange::new(9, 3)]);
        assert!(!pool_range_is_valid(&bad_reserved));
    }

    #[test]
    fn vni_pool_starts_at_range_first() {
        let pool = NetworkPool::vxlan(IdRange::new(5000, 5002), vec![IdRange::single(5000)]);
        assert_eq!(
            allocate_network_id(&pool, [5001].into_iter()).map(|n| n.id),
            Some(5002)
        );
        assert_eq!(allocate_network_id(&pool, [5001, 5002].into_iter()), None);
    }

    #[test]
    fn subnets_are_aligned_and_skip_mixed_prefix_neighbours() {
        let supernet = Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 22);
        let used = [
            Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 0), 25),
            Ipv4Net::new(Ipv4Addr::new(10, 128, 1, 0), 24),
        ];
        assert_eq!(
            allocate_subnet(&supernet, 24, used.iter()),
            Some(Ipv4Net::new(Ipv4Addr::new(10, 128, 2, 0), 24))
        );
        assert_eq!(
            allocate_subnet(&supernet, 25, used.iter()),
            Some(Ipv4Net::new(Ipv4Addr::new(10, 128, 0, 128), 25))
        );
        assert_eq!(allocate_subnet(&supernet, 22, used.iter()), None);
    }

    #[test]
    fn mac_blocks_do_not_overlap_and_render_under_prefix() {
        let used = [
            MacBlock { first: 0, count: 3 },
            MacBlock { first: 5, count: 2 },
        ];
        let block = allocate_macs(2, used.iter()).expect("room");
        assert_eq!(block, MacBlock { first: 3, count: 2 });
        assert!(used.iter().all(|u| !u.overlaps(&block)));
        assert_eq!(allocate_macs(3, used.iter()).map(|b| b.first), Some(7));
        assert_eq!(
            block.mac([0x02, 0x56, 0x43], 1).to_string(),
            "02:56:43:00:00:04"
        );
        let full = [MacBlock {
            first: 0,
            count: (MAC_SUFFIXES - 1) as u32,
        }];
        assert_eq!(allocate_macs(2, full.iter()), None);
    }
}
