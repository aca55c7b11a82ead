//! Reservation calendars of all P-nodes: per P-node, bookings sorted by start; peak usage
//! over a window by a sweep.
//!
//! Admission reads the calendar of every P-node, so all of them live in one vector, P-node by
//! P-node (compressed-row layout: P-node `i` owns `slots[offsets[i]..offsets[i + 1]]`). The scan
//! then streams through memory instead of missing the cache once per P-node; the price is that
//! adding or removing a reservation rewrites the vector (one pass, about a millisecond at
//! 100,000 bookings). Reservation ids, needed only to name conflicts, sit in a parallel vector.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::model::{Dimension, ReservationId, Resources, Timestamp, Window};

/// What one reservation holds on one P-node: the sum of its nodes there, for its whole window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking<'a> {
    pub window: Window,
    pub demand: Resources,
    pub reservation: &'a str,
}

/// Calendars up to this many bookings are scanned whole instead of binary-searched.
const SCAN_LIMIT: usize = 16;

/// Scratch space of a sweep, (end, booking index): pass the same vector to many
/// [`Calendar::peak`] calls to avoid allocating for each.
pub type SweepEvent = (Timestamp, usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    window: Window,
    demand: Resources,
}

/// The calendars of all P-nodes (in the site's P-node order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredCalendars")]
pub(crate) struct Calendars {
    slots: Vec<Slot>,
    reservations: Vec<ReservationId>,
    /// `offsets.len()` is the number of P-nodes + 1.
    offsets: Vec<usize>,
    /// Longest booking ever added: bounds how far before a window an overlapping booking can
    /// start, so long calendars are binary-searched. Never shrinks (conservative).
    longest: i64,
}

/// Calendars as persisted, before their invariants are checked.
#[derive(Deserialize)]
struct StoredCalendars {
    slots: Vec<Slot>,
    reservations: Vec<ReservationId>,
    offsets: Vec<usize>,
    longest: i64,
}

impl TryFrom<StoredCalendars> for Calendars {
    type Error = String;

    fn try_from(c: StoredCalendars) -> Result<Self, String> {
        let calendars = Calendars {
            slots: c.slots,
            reservations: c.reservations,
            offsets: c.offsets,
            longest: c.longest,
        };
        let offsets_ok = calendars.offsets.first() == Some(&0)
            && calendars.offsets.last() == Some(&calendars.slots.len())
            && calendars.offsets.windows(2).all(|w| w[0] <= w[1])
            && calendars.reservations.len() == calendars.slots.len();
        if !offsets_ok {
            return Err("calendar offsets or vector lengths are inconsistent".into());
        }
        let ordered = (0..calendars.pnode_count()).all(|i| {
            let c = calendars.calendar(i);
            let keys: Vec<_> = c
                .bookings()
                .map(|b| (b.window.start, b.reservation))
                .collect();
            keys.windows(2).all(|k| k[0] <= k[1])
                && c.bookings()
                    .all(|b| b.window.duration() <= calendars.longest)
        });
        if !ordered {
            return Err("calendar bookings are out of order or longer than recorded".into());
        }
        Ok(calendars)
    }
}

impl Calendars {
    pub(crate) fn new(pnodes: usize) -> Self {
        Calendars {
            slots: Vec::new(),
            reservations: Vec::new(),
            offsets: vec![0; pnodes + 1],
            longest: 0,
        }
    }

    /// Calendars holding `bookings` (`(P-node index, window, demand, reservation)`, any order),
    /// built with one sort instead of one insertion each: restoring a persisted site.
    pub(crate) fn from_bookings(
        pnodes: usize,
        mut bookings: Vec<(usize, Window, Resources, ReservationId)>,
    ) -> Self {
        bookings.sort_by(|a, b| (a.0, a.1.start, &a.3).cmp(&(b.0, b.1.start, &b.3)));
        let mut calendars = Calendars::new(pnodes);
        let mut counts = vec![0usize; pnodes];
        for (pnode, window, demand, reservation) in bookings {
            if let Some(count) = counts.get_mut(pnode) {
                *count += 1;
                calendars.longest = calendars.longest.max(window.duration());
                calendars.slots.push(Slot { window, demand });
                calendars.reservations.push(reservation);
            }
        }
        let mut total = 0;
        for (offset, count) in calendars.offsets.iter_mut().skip(1).zip(counts) {
            total += count;
            *offset = total;
        }
        calendars
    }

    pub(crate) fn pnode_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Number of bookings over all P-nodes.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    fn range(&self, pnode: usize) -> Range<usize> {
        let start = self.offsets.get(pnode).copied().unwrap_or(0);
        let end = self.offsets.get(pnode + 1).copied().unwrap_or(start);
        start..end.max(start)
    }

    /// The calendar of P-node `pnode` (empty for an unknown index).
    pub(crate) fn calendar(&self, pnode: usize) -> Calendar<'_> {
        let range = self.range(pnode);
        Calendar {
            slots: self.slots.get(range.clone()).unwrap_or_default(),
            reservations: self.reservations.get(range).unwrap_or_default(),
            longest: self.longest,
        }
    }

    /// Adds `reservation`'s bookings: `(P-node index, demand)` pairs sorted by P-node, one each.
    pub(crate) fn add(
        &mut self,
        reservation: &str,
        window: Window,
        demands: &[(usize, Resources)],
    ) {
        self.longest = self.longest.max(window.duration());
        // Insertion points in the current vector, ascending because `demands` is by P-node.
        let inserts: Vec<(usize, usize, Resources)> = demands
            .iter()
            .map(|&(pnode, demand)| {
                let range = self.range(pnode);
                let c = self.calendar(pnode);
                let lo = c.slots.partition_point(|s| s.window.start < window.start);
                let hi = c.slots.partition_point(|s| s.window.start <= window.start);
                let same_start = c.reservations.get(lo..hi).unwrap_or_default();
                let at = lo + same_start.partition_point(|r| r.as_str() < reservation);
                (range.start + at, pnode, demand)
            })
            .collect();
        // Grow by the new bookings, then merge from the back so that each existing booking
        // moves once and no second vector is allocated.
        let placeholder = Slot {
            window,
            demand: Resources::ZERO,
        };
        let mut src = self.slots.len();
        self.slots.resize(src + inserts.len(), placeholder);
        self.reservations
            .resize_with(src + inserts.len(), String::new);
        let mut dst = self.slots.len();
        for &(at, _, demand) in inserts.iter().rev() {
            while src > at {
                src -= 1;
                dst -= 1;
                self.slots.swap(src, dst);
                self.reservations.swap(src, dst);
            }
            dst -= 1;
            self.slots[dst] = Slot { window, demand };
            self.reservations[dst] = reservation.to_string();
        }
        // Every offset after an insertion's P-node moves by one.
        let mut shift = 0;
        let mut by_pnode = inserts.iter().map(|&(_, pnode, _)| pnode).peekable();
        for (pnode, offset) in self.offsets.iter_mut().enumerate() {
            *offset += shift;
            while by_pnode.next_if(|&p| p == pnode).is_some() {
                shift += 1;
            }
        }
    }

    /// Keeps the bookings for which `keep` holds, in order.
    fn retain(&mut self, keep: impl Fn(&Window, &str) -> bool) {
        let mut kept = 0;
        let mut offsets = Vec::with_capacity(self.offsets.len());
        offsets.push(0);
        for pnode in 0..self.pnode_count() {
            for i in self.range(pnode) {
                if keep(&self.slots[i].window, &self.reservations[i]) {
                    self.slots.swap(kept, i);
                    self.reservations.swap(kept, i);
                    kept += 1;
                }
            }
            offsets.push(kept);
        }
        self.slots.truncate(kept);
        self.reservations.truncate(kept);
        self.offsets = offsets;
    }

    pub(crate) fn remove(&mut self, reservation: &str) {
        self.retain(|_, r| r != reservation);
    }

    /// Drops bookings that ended at or before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        self.retain(|w, _| w.end > now);
    }

    /// Moves the end of `reservation`'s booking on `pnode`; the start (sort key) is unchanged.
    pub(crate) fn set_end(&mut self, pnode: usize, reservation: &str, end: Timestamp) {
        let range = self.range(pnode);
        let slots = self.slots.get_mut(range.clone()).unwrap_or_default();
        let ids = self.reservations.get(range).unwrap_or_default();
        for (s, r) in slots.iter_mut().zip(ids) {
            if r == reservation {
                s.window.end = end;
                self.longest = self.longest.max(s.window.duration());
            }
        }
    }

    /// Approximate heap bytes held (vector capacities plus reservation ids).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.reservations.capacity() * std::mem::size_of::<ReservationId>()
            + self
                .reservations
                .iter()
                .map(String::capacity)
                .sum::<usize>()
            + self.offsets.capacity() * std::mem::size_of::<usize>()
    }
}

/// One P-node's calendar: its bookings sorted by (start, reservation).
#[derive(Debug, Clone, Copy)]
pub struct Calendar<'a> {
    slots: &'a [Slot],
    reservations: &'a [ReservationId],
    longest: i64,
}

impl<'a> Calendar<'a> {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn booking(&self, i: usize) -> Option<Booking<'a>> {
        let slot = self.slots.get(i)?;
        Some(Booking {
            window: slot.window,
            demand: slot.demand,
            reservation: self.reservations.get(i)?,
        })
    }

    /// All bookings in calendar order.
    pub fn bookings(&self) -> impl Iterator<Item = Booking<'a>> + 'a {
        let c = *self;
        (0..c.len()).filter_map(move |i| c.booking(i))
    }

    /// Bookings whose window overlaps `window`, in calendar order.
    pub fn overlapping(&self, window: Window) -> impl Iterator<Item = Booking<'a>> + 'a {
        let c = *self;
        c.overlapping_indices(window)
            .filter_map(move |i| c.booking(i))
    }

    fn overlapping_indices(&self, window: Window) -> impl Iterator<Item = usize> + 'a {
        let slots = self.slots;
        self.candidates(window)
            .filter(move |&i| slots.get(i).is_some_and(|s| s.window.overlaps(&window)))
    }

    /// Indices of bookings that can overlap `window`: those starting before its end and no
    /// earlier than its start minus the longest booking.
    fn candidates(&self, window: Window) -> Range<usize> {
        // A short calendar is cheaper to scan than to binary-search: the search's dependent
        // loads each wait on memory, a scan streams.
        if self.slots.len() <= SCAN_LIMIT {
            return 0..self.slots.len();
        }
        let earliest = window.start.saturating_sub(self.longest);
        let lo = self.slots.partition_point(|s| s.window.start < earliest);
        let hi = self.slots.partition_point(|s| s.window.start < window.end);
        lo..hi.max(lo)
    }

    /// Peak usage per dimension over `window`. `scratch` is reused across calls to avoid
    /// allocating per P-node.
    pub fn peak(&self, window: Window, scratch: &mut Vec<SweepEvent>) -> Resources {
        // Fast path: if all overlapping bookings share an instant, the peak is their sum.
        let mut sum = Resources::ZERO;
        let mut latest_start = Timestamp::MIN;
        let mut earliest_end = Timestamp::MAX;
        for i in self.overlapping_indices(window) {
            let Some(Slot { window: w, demand }) = self.slots.get(i) else {
                continue;
            };
            sum = sum.saturating_add(demand);
            latest_start = latest_start.max(w.start);
            earliest_end = earliest_end.min(w.end);
        }
        if latest_start < earliest_end || sum == Resources::ZERO {
            return sum;
        }
        let mut peak = Resources::ZERO;
        self.sweep(window, scratch, |_, usage| {
            peak = peak.max_each(usage);
            false
        });
        peak
    }

    /// Walks `window` in time order; after each booking starts (or at `window.start` for those
    /// already running) calls `on_start(booking, usage)` with the usage at that instant.
    /// Stops early when `on_start` returns true. Usage only grows at starts, so these instants
    /// cover every maximum.
    fn sweep(
        &self,
        window: Window,
        scratch: &mut Vec<SweepEvent>,
        mut on_start: impl FnMut(Booking<'a>, &Resources) -> bool,
    ) {
        // Starts come in calendar order already (clipping to the window keeps it); only the
        // ends inside the window need sorting, then the two sequences are merged.
        scratch.clear();
        scratch.extend(
            self.overlapping_indices(window)
                .filter_map(|i| self.slots.get(i).map(|s| (s.window.end, i)))
                .filter(|&(end, _)| end < window.end),
        );
        scratch.sort_unstable();
        let mut ends = scratch.iter().peekable();
        let mut usage = Resources::ZERO;
        for i in self.overlapping_indices(window) {
            let Some(booking) = self.booking(i) else {
                continue;
            };
            let start = booking.window.start.max(window.start);
            // Half-open windows: what ends at `start` is gone before this booking begins.
            while let Some(&(_, ended)) = ends.next_if(|(end, _)| *end <= start) {
                usage = usage.saturating_sub(
                    self.slots
                        .get(ended)
                        .map_or(&Resources::ZERO, |s| &s.demand),
                );
            }
            usage = usage.saturating_add(&booking.demand);
            if on_start(booking, &usage) {
                return;
            }
        }
    }

    /// The booking whose start first pushes usage plus `demand` over `capacity` during `window`,
    /// and the dimension that runs out — the reservation an extension conflicts with.
    pub(crate) fn first_overflow(
        &self,
        window: Window,
        demand: &Resources,
        capacity: &Resources,
        scratch: &mut Vec<SweepEvent>,
    ) -> Option<(Booking<'a>, Dimension)> {
        let mut found = None;
        self.sweep(window, scratch, |b, usage| {
            found = usage
                .saturating_add(demand)
                .exceeded_dimension(capacity)
                .map(|d| (b, d));
            found.is_some()
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Entry {
        window: Window,
        demand: Resources,
        reservation: String,
    }

    fn booking(start: i64, end: i64, cpu: u32, id: &str) -> Entry {
        Entry {
            window: Window::new(start, end),
            demand: Resources::new(cpu, u64::from(cpu) * 1024, 1),
            reservation: id.to_string(),
        }
    }

    /// Calendars of a one-P-node site holding `bookings`.
    fn calendar(bookings: Vec<Entry>) -> Calendars {
        let mut c = Calendars::new(1);
        for b in bookings {
            c.add(&b.reservation, b.window, &[(0, b.demand)]);
        }
        c
    }

    fn ids(c: &Calendars, pnode: usize) -> Vec<&str> {
        c.calendar(pnode)
            .bookings()
            .map(|b| b.reservation)
            .collect()
    }

    #[test]
    fn peak_of_sequential_bookings_is_max_not_sum() {
        let c = calendar(vec![
            booking(0, 10, 4, "a"),
            booking(10, 20, 6, "b"),
            booking(20, 30, 2, "c"),
        ]);
        let mut s = Vec::new();
        assert_eq!(c.calendar(0).peak(Window::new(0, 30), &mut s).cpu, 6);
        assert_eq!(c.calendar(0).peak(Window::new(0, 10), &mut s).cpu, 4);
        // Touching bookings share no instant: the fast path must not add them up.
        assert_eq!(c.calendar(0).peak(Window::new(0, 20), &mut s).cpu, 6);
        assert_eq!(c.calendar(0).peak(Window::new(5, 15), &mut s).cpu, 6);
        assert_eq!(c.calendar(0).peak(Window::new(20, 40), &mut s).cpu, 2);
        assert_eq!(
            c.calendar(0).peak(Window::new(30, 40), &mut s),
            Resources::ZERO
        );
    }

    #[test]
    fn peak_of_overlapping_bookings_is_sum_at_common_instant() {
        let c = calendar(vec![
            booking(0, 10, 4, "a"),
            booking(5, 15, 6, "b"),
            booking(12, 30, 3, "c"),
            booking(14, 16, 1, "d"),
        ]);
        let mut s = Vec::new();
        assert_eq!(c.calendar(0).peak(Window::new(0, 30), &mut s).cpu, 10);
        // In [10, 30) "a" is gone: b+c+d at 14.
        assert_eq!(c.calendar(0).peak(Window::new(10, 30), &mut s).cpu, 10);
        assert_eq!(c.calendar(0).peak(Window::new(15, 30), &mut s).cpu, 4);
        assert_eq!(c.calendar(0).peak(Window::new(16, 30), &mut s).cpu, 3);
    }

    #[test]
    fn peak_matches_brute_force() {
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for round in 0..200 {
            let mut bookings = Vec::new();
            for i in 0..next(12) {
                let start = next(100) as i64;
                let end = start + 1 + next(40) as i64;
                bookings.push(booking(
                    start,
                    end,
                    1 + next(5) as u32,
                    &format!("r{round}-{i}"),
                ));
            }
            let c = calendar(bookings.clone());
            let ws = next(120) as i64;
            let w = Window::new(ws, ws + 1 + next(50) as i64);
            let brute = (w.start..w.end)
                .map(|t| {
                    bookings
                        .iter()
                        .filter(|b| b.window.start <= t && t < b.window.end)
                        .map(|b| b.demand.cpu)
                        .sum::<u32>()
                })
                .max()
                .unwrap_or(0);
            assert_eq!(
                c.calendar(0).peak(w, &mut Vec::new()).cpu,
                brute,
                "window {w}"
            );
        }
    }

    #[test]
    fn overlapping_uses_longest_to_find_early_starts() {
        let c = calendar(vec![
            booking(0, 1000, 1, "long"),
            booking(500, 510, 1, "short"),
        ]);
        let ids: Vec<_> = c
            .calendar(0)
            .overlapping(Window::new(900, 950))
            .map(|b| b.reservation)
            .collect();
        assert_eq!(ids, ["long"]);
    }

    #[test]
    fn first_overflow_names_the_booking_that_tips_capacity() {
        let c = calendar(vec![
            booking(0, 100, 2, "early"),
            booking(50, 60, 3, "late"),
        ]);
        let capacity = Resources::new(6, 1 << 20, 100);
        let demand = Resources::new(2, 0, 0);
        let mut s = Vec::new();
        let (b, dim) = c
            .calendar(0)
            .first_overflow(Window::new(10, 80), &demand, &capacity, &mut s)
            .expect("overflow");
        assert_eq!((b.reservation, dim), ("late", Dimension::Cpu));
        assert!(c
            .calendar(0)
            .first_overflow(Window::new(60, 80), &demand, &capacity, &mut s)
            .is_none());
    }

    #[test]
    fn add_keeps_order_and_remove_set_end_expire() {
        let mut c = calendar(vec![
            booking(20, 30, 1, "b"),
            booking(0, 10, 1, "a"),
            booking(20, 25, 1, "a2"),
            booking(20, 22, 1, "a1"),
        ]);
        assert_eq!(ids(&c, 0), ["a", "a1", "a2", "b"]);
        c.set_end(0, "a", 15);
        assert_eq!(
            c.calendar(0).bookings().next().map(|b| b.window.end),
            Some(15)
        );
        c.remove("a2");
        assert_eq!(ids(&c, 0), ["a", "a1", "b"]);
        c.expire(22);
        assert_eq!(ids(&c, 0), ["b"]);
        assert!(c.heap_bytes() > 0);
    }

    #[test]
    fn several_pnodes_share_one_vector() {
        let mut c = Calendars::new(4);
        let cpu = |n| Resources::new(n, 0, 0);
        c.add("x", Window::new(10, 20), &[(1, cpu(1)), (3, cpu(2))]);
        c.add(
            "w",
            Window::new(10, 20),
            &[(0, cpu(3)), (1, cpu(4)), (3, cpu(5))],
        );
        c.add("v", Window::new(0, 5), &[(3, cpu(6))]);
        assert_eq!(
            (ids(&c, 0), ids(&c, 1), ids(&c, 2), ids(&c, 3)),
            (vec!["w"], vec!["w", "x"], vec![], vec!["v", "w", "x"])
        );
        let cpus: Vec<u32> = c.calendar(3).bookings().map(|b| b.demand.cpu).collect();
        assert_eq!(cpus, [6, 5, 2]);
        assert_eq!(c.len(), 6);
        c.remove("w");
        assert_eq!(
            (ids(&c, 0), ids(&c, 1), ids(&c, 2), ids(&c, 3)),
            (vec![], vec!["x"], vec![], vec!["v", "x"])
        );
        c.set_end(3, "x", 30);
        assert_eq!(
            c.calendar(1).bookings().next().map(|b| b.window.end),
            Some(20),
            "only P-node 3 moved"
        );
        assert_eq!(c.calendar(7).len(), 0, "unknown P-node reads as empty");
    }

    #[test]
    fn persisted_calendar_is_checked_when_read_back() {
        let c = calendar(vec![booking(0, 10, 1, "a"), booking(5, 30, 2, "b")]);
        let json = serde_json::to_string(&c).expect("serializes");
        assert_eq!(serde_json::from_str::<Calendars>(&json).expect("valid"), c);
        let swapped = json
            .replacen("\"a\"", "\"x\"", 1)
            .replacen("\"b\"", "\"a\"", 1)
            .replacen("\"x\"", "\"b\"", 1);
        assert!(
            serde_json::from_str::<Calendars>(&swapped).is_ok(),
            "ids swap keeps start order"
        );
        let short = json.replacen(",\"b\"]", "]", 1);
        assert!(
            serde_json::from_str::<Calendars>(&short).is_err(),
            "{short}"
        );
        let unsorted = json.replacen("\"start\":0", "\"start\":7", 1);
        assert!(
            serde_json::from_str::<Calendars>(&unsorted).is_err(),
            "{unsorted}"
        );
    }
}
