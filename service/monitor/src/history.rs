//! Bounded per-host, per-metric sample rings for sparklines.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix seconds.
    pub t: u64,
    pub v: f64,
}

/// At most `per_series` samples in each of at most `max_series` (host, metric) series, so
/// memory stays bounded however many hosts report. Series beyond the cap are not started and
/// are counted in [`History::refused`].
#[derive(Debug, Clone)]
pub struct History {
    per_series: usize,
    max_series: usize,
    series_count: usize,
    refused: u64,
    hosts: HashMap<String, HashMap<String, VecDeque<Sample>>>,
}

impl History {
    pub fn new(per_series: usize, max_series: usize) -> History {
        History {
            per_series: per_series.max(1),
            max_series,
            series_count: 0,
            refused: 0,
            hosts: HashMap::new(),
        }
    }

    /// Appends a sample, dropping the oldest when the ring is full; a sample at the time of the
    /// last one replaces it (several gmonds may report the same host in one cycle). False when
    /// refused.
    pub fn push(&mut self, host: &str, metric: &str, t: u64, v: f64) -> bool {
        let known = self.hosts.get(host).is_some_and(|m| m.contains_key(metric));
        if !known {
            if self.series_count >= self.max_series {
                self.refused += 1;
                return false;
            }
            self.series_count += 1;
            self.hosts
                .entry(host.to_string())
                .or_default()
                .insert(metric.to_string(), VecDeque::with_capacity(self.per_series));
        }
        let Some(ring) = self.hosts.get_mut(host).and_then(|m| m.get_mut(metric)) else {
            return false;
        };
        if let Some(last) = ring.back_mut().filter(|last| last.t == t) {
            last.v = v;
            return true;
        }
        if ring.len() == self.per_series {
            ring.pop_front();
        }
        ring.push_back(Sample { t, v });
        true
    }

    /// Samples of one series, oldest first (empty when unknown).
    pub fn series(&self, host: &str, metric: &str) -> impl Iterator<Item = &Sample> {
        self.hosts
            .get(host)
            .and_then(|m| m.get(metric))
            .into_iter()
            .flatten()
    }

    pub fn series_count(&self) -> usize {
        self.series_count
    }

    /// Samples refused because `max_series` was reached.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}
