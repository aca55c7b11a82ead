//! Per-P-node reservation calendar: bookings sorted by start, peak usage over a window by sweep.
//!
//! Stored as parallel vectors (struct of arrays): admission scans the windows of every P-node,
//! so keeping them dense (16 bytes per booking) instead of interleaved with demands and ids
//! keeps that scan in cache at 100,000 bookings.

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

/// Sweep scratch: (end, booking index) of bookings ending inside the window.
pub(crate) type Event = (Timestamp, usize);

/// Bookings of one P-node, sorted by (start, reservation); the three vectors run in parallel
/// (checked when a persisted calendar is read back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredCalendar")]
pub struct Calendar {
    windows: Vec<Window>,
    demands: Vec<Resources>,
    reservations: Vec<ReservationId>,
    /// Longest booking ever inserted: bounds how far before a window an overlapping booking can
    /// start, so lookups binary-search instead of scanning history. Never shrinks (conservative).
    longest: i64,
}

/// A calendar as persisted, before its invariants are checked.
#[derive(Deserialize)]
struct StoredCalendar {
    windows: Vec<Window>,
    demands: Vec<Resources>,
    reservations: Vec<ReservationId>,
    longest: i64,
}

impl TryFrom<StoredCalendar> for Calendar {
    type Error = String;

    fn try_from(c: StoredCalendar) -> Result<Self, String> {
        let n = c.windows.len();
        if c.demands.len() != n || c.reservations.len() != n {
            return Err("calendar vectors differ in length".into());
        }
        let sorted = c
            .windows
            .iter()
            .zip(&c.reservations)
            .collect::<Vec<_>>()
            .windows(2)
            .all(|p| (p[0].0.start, p[0].1) <= (p[1].0.start, p[1].1));
        let longest_ok = c.windows.iter().all(|w| w.duration() <= c.longest);
        if !sorted || !longest_ok {
            return Err("calendar bookings are out of order or longer than recorded".into());
        }
        Ok(Calendar {
            windows: c.windows,
            demands: c.demands,
            reservations: c.reservations,
            longest: c.longest,
        })
    }
}

impl Calendar {
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    fn booking(&self, i: usize) -> Option<Booking<'_>> {
        Some(Booking {
            window: *self.windows.get(i)?,
            demand: *self.demands.get(i)?,
            reservation: self.reservations.get(i)?,
        })
    }

    /// All bookings in calendar order.
    pub fn bookings(&self) -> impl Iterator<Item = Booking<'_>> {
        (0..self.len()).filter_map(|i| self.booking(i))
    }

    /// Bookings whose window overlaps `window`, in calendar order.
    pub fn overlapping(&self, window: Window) -> impl Iterator<Item = Booking<'_>> {
        self.overlapping_indices(window)
            .filter_map(|i| self.booking(i))
    }

    fn overlapping_indices(&self, window: Window) -> impl Iterator<Item = usize> + '_ {
        self.candidates(window)
            .filter(move |&i| self.windows.get(i).is_some_and(|w| w.overlaps(&window)))
    }

    /// Indices of bookings that can overlap `window`: those starting before its end and no
    /// earlier than its start minus the longest booking.
    fn candidates(&self, window: Window) -> Range<usize> {
        let earliest = window.start.saturating_sub(self.longest);
        let lo = self.windows.partition_point(|w| w.start < earliest);
        let hi = self.windows.partition_point(|w| w.start < window.end);
        lo..hi.max(lo)
    }

    /// Peak usage per dimension over `window`. `scratch` is reused across calls to avoid
    /// allocating per P-node.
    pub fn peak(&self, window: Window, scratch: &mut Vec<Event>) -> Resources {
        // Fast path: if all overlapping bookings share an instant, the peak is their sum.
        let mut sum = Resources::ZERO;
        let mut latest_start = Timestamp::MIN;
        let mut earliest_end = Timestamp::MAX;
        for i in self.overlapping_indices(window) {
            let (Some(w), Some(d)) = (self.windows.get(i), self.demands.get(i)) else {
                continue;
            };
            sum = sum.saturating_add(d);
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
    pub fn sweep<'a>(
        &'a self,
        window: Window,
        scratch: &mut Vec<Event>,
        mut on_start: impl FnMut(Booking<'a>, &Resources) -> bool,
    ) {
        // Starts come in calendar order already (clipping to the window keeps it); only the
        // ends inside the window need sorting, then the two sequences are merged.
        scratch.clear();
        scratch.extend(
            self.overlapping_indices(window)
                .filter_map(|i| self.windows.get(i).map(|w| (w.end, i)))
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
                usage = usage.saturating_sub(self.demands.get(ended).unwrap_or(&Resources::ZERO));
            }
            usage = usage.saturating_add(&booking.demand);
            if on_start(booking, &usage) {
                return;
            }
        }
    }

    /// The booking whose start first pushes usage plus `demand` over `capacity` during `window`,
    /// and the dimension that runs out — the reservation an extension conflicts with.
    pub fn first_overflow(
        &self,
        window: Window,
        demand: &Resources,
        capacity: &Resources,
        scratch: &mut Vec<Event>,
    ) -> Option<(Booking<'_>, Dimension)> {
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

    pub fn insert(&mut self, window: Window, demand: Resources, reservation: ReservationId) {
        self.longest = self.longest.max(window.duration());
        let lo = self.windows.partition_point(|w| w.start < window.start);
        let hi = self.windows.partition_point(|w| w.start <= window.start);
        let same_start = self.reservations.get(lo..hi).unwrap_or_default();
        let at = lo + same_start.partition_point(|r| r.as_str() < reservation.as_str());
        self.windows.insert(at, window);
        self.demands.insert(at, demand);
        self.reservations.insert(at, reservation);
    }

    /// Keeps the bookings for which `keep` holds, in order.
    fn retain(&mut self, keep: impl Fn(&Window, &str) -> bool) {
        let mut kept = 0;
        for i in 0..self.len() {
            if keep(&self.windows[i], &self.reservations[i]) {
                self.windows.swap(kept, i);
                self.demands.swap(kept, i);
                self.reservations.swap(kept, i);
                kept += 1;
            }
        }
        self.windows.truncate(kept);
        self.demands.truncate(kept);
        self.reservations.truncate(kept);
    }

    pub fn remove(&mut self, reservation: &str) {
        self.retain(|_, r| r != reservation);
    }

    /// Drops bookings that ended at or before `now`.
    pub fn expire(&mut self, now: Timestamp) {
        self.retain(|w, _| w.end > now);
    }

    /// Moves the end of `reservation`'s booking; the start (sort key) is unchanged.
    pub fn set_end(&mut self, reservation: &str, end: Timestamp) {
        for (w, r) in self.windows.iter_mut().zip(&self.reservations) {
            if r == reservation {
                w.end = end;
                self.longest = self.longest.max(w.duration());
            }
        }
    }

    /// Approximate heap bytes held (vector capacities plus reservation ids).
    pub fn heap_bytes(&self) -> usize {
        self.windows.capacity() * std::mem::size_of::<Window>()
            + self.demands.capacity() * std::mem::size_of::<Resources>()
            + self.reservations.capacity() * std::mem::size_of::<ReservationId>()
            + self
                .reservations
                .iter()
                .map(String::capacity)
                .sum::<usize>()
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

    fn calendar(bookings: Vec<Entry>) -> Calendar {
        let mut c = Calendar::default();
        for b in bookings {
            c.insert(b.window, b.demand, b.reservation);
        }
        c
    }

    fn ids(c: &Calendar) -> Vec<&str> {
        c.bookings().map(|b| b.reservation).collect()
    }

    #[test]
    fn peak_of_sequential_bookings_is_max_not_sum() {
        let c = calendar(vec![
            booking(0, 10, 4, "a"),
            booking(10, 20, 6, "b"),
            booking(20, 30, 2, "c"),
        ]);
        let mut s = Vec::new();
        assert_eq!(c.peak(Window::new(0, 30), &mut s).cpu, 6);
        assert_eq!(c.peak(Window::new(0, 10), &mut s).cpu, 4);
        assert_eq!(c.peak(Window::new(20, 40), &mut s).cpu, 2);
        assert_eq!(c.peak(Window::new(30, 40), &mut s), Resources::ZERO);
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
        assert_eq!(c.peak(Window::new(0, 30), &mut s).cpu, 10);
        // In [10, 30) "a" is gone: b+c+d at 14.
        assert_eq!(c.peak(Window::new(10, 30), &mut s).cpu, 10);
        assert_eq!(c.peak(Window::new(15, 30), &mut s).cpu, 4);
        assert_eq!(c.peak(Window::new(16, 30), &mut s).cpu, 3);
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
            assert_eq!(c.peak(w, &mut Vec::new()).cpu, brute, "window {w}");
        }
    }

    #[test]
    fn overlapping_uses_longest_to_find_early_starts() {
        let c = calendar(vec![
            booking(0, 1000, 1, "long"),
            booking(500, 510, 1, "short"),
        ]);
        let ids: Vec<_> = c
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
            .first_overflow(Window::new(10, 80), &demand, &capacity, &mut s)
            .expect("overflow");
        assert_eq!((b.reservation, dim), ("late", Dimension::Cpu));
        assert!(c
            .first_overflow(Window::new(60, 80), &demand, &capacity, &mut s)
            .is_none());
    }

    #[test]
    fn insert_keeps_order_and_remove_set_end_expire() {
        let mut c = calendar(vec![
            booking(20, 30, 1, "b"),
            booking(0, 10, 1, "a"),
            booking(20, 25, 1, "a2"),
            booking(20, 22, 1, "a1"),
        ]);
        assert_eq!(ids(&c), ["a", "a1", "a2", "b"]);
        c.set_end("a", 15);
        assert_eq!(c.bookings().next().map(|b| b.window.end), Some(15));
        c.remove("a2");
        assert_eq!(ids(&c), ["a", "a1", "b"]);
        c.expire(22);
        assert_eq!(ids(&c), ["b"]);
        assert_eq!(c.heap_bytes() > 0, !c.is_empty());
    }

    #[test]
    fn persisted_calendar_is_checked_when_read_back() {
        let c = calendar(vec![booking(0, 10, 1, "a"), booking(5, 30, 2, "b")]);
        let json = serde_json::to_string(&c).expect("serializes");
        assert_eq!(serde_json::from_str::<Calendar>(&json).expect("valid"), c);
        let swapped = json
            .replacen("\"a\"", "\"x\"", 1)
            .replacen("\"b\"", "\"a\"", 1)
            .replacen("\"x\"", "\"b\"", 1);
        assert!(
            serde_json::from_str::<Calendar>(&swapped).is_ok(),
            "ids swap keeps start order"
        );
        let short = json.replacen(",\"b\"]", "]", 1);
        assert!(serde_json::from_str::<Calendar>(&short).is_err(), "{short}");
        let unsorted = json.replacen("\"start\":0", "\"start\":7", 1);
        assert!(
            serde_json::from_str::<Calendar>(&unsorted).is_err(),
            "{unsorted}"
        );
    }
}
