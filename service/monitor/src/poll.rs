//! Polling gmond endpoints over TCP: the crate's only I/O.
//!
//! gmond writes its whole XML on accept and closes. Each endpoint gets its own connect timeout,
//! a total read deadline (so a host trickling bytes cannot hold a cycle) and a size cap; at most
//! `concurrency` endpoints are in flight, so a cycle's sockets stay bounded however long the list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::model::GangliaXml;
use crate::parse::{parse_bytes, ParseError, ParseLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    /// Name resolution and TCP connect together.
    pub connect_timeout: Duration,
    /// From connect to the peer closing, however the bytes trickle in.
    pub read_timeout: Duration,
    /// Endpoints polled at once.
    pub concurrency: usize,
    /// `max_bytes` also caps what is read from one endpoint, so a cycle buffers at most
    /// `concurrency * limits.max_bytes` bytes however hostile the peers.
    pub limits: ParseLimits,
}

impl Default for PollConfig {
    /// 8 MiB per endpoint holds a ~500-host multicast gmond; vcds P-nodes report unicast (their
    /// own host and VMs, tens of KiB). With 64 in flight a cycle buffers at most 512 MiB.
    fn default() -> Self {
        PollConfig {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
            concurrency: 64,
            limits: ParseLimits {
                max_bytes: 8 * 1024 * 1024,
                ..ParseLimits::default()
            },
        }
    }
}

/// Why one endpoint gave no data this cycle.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PollError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("read failed after {bytes} bytes: {reason}")]
    Read { bytes: usize, reason: String },
    #[error("peer did not finish within {timeout:?}")]
    ReadTimeout { timeout: Duration },
    #[error("peer sent more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("garbage from gmond: {0}")]
    Parse(#[from] ParseError),
    #[error("poll task failed: {0}")]
    Task(String),
}

/// The outcome for one endpoint in a cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointReport {
    pub endpoint: String,
    pub elapsed: Duration,
    pub result: Result<GangliaXml, PollError>,
}

/// Connects to `endpoint` (`host:port`) and reads everything it sends, within the bounds.
pub async fn fetch(endpoint: &str, cfg: &PollConfig) -> Result<Vec<u8>, PollError> {
    let stream = tokio::time::timeout(cfg.connect_timeout, connect(endpoint))
        .await
        .map_err(|_| PollError::ConnectTimeout(cfg.connect_timeout))??;
    let limit = cfg.limits.max_bytes;
    let mut buf = Vec::with_capacity(16 * 1024);
    // One byte past the cap tells "exactly at the cap" from "over it".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut capped = stream.take(cap);
    match tokio::time::timeout(cfg.read_timeout, capped.read_to_end(&mut buf)).await {
        Err(_) => Err(PollError::ReadTimeout {
            timeout: cfg.read_timeout,
        }),
        Ok(Err(e)) => Err(PollError::Read {
            bytes: buf.len(),
            reason: e.to_string(),
        }),
        Ok(Ok(_)) if buf.len() > limit => Err(PollError::TooLarge { limit }),
        Ok(Ok(_)) => Ok(buf),
    }
}

async fn connect(endpoint: &str) -> Result<TcpStream, PollError> {
    let mut last = PollError::Resolve(endpoint.to_string());
    // An IP literal resolves without DNS; a name may block a pool thread, which the caller's
    // connect timeout stops waiting for.
    let addrs = tokio::net::lookup_host(endpoint)
        .await
        .map_err(|e| PollError::Resolve(format!("{endpoint}: {e}")))?;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = PollError::Connect(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

/// Fetches and parses one endpoint.
pub async fn poll_endpoint(endpoint: &str, cfg: &PollConfig) -> EndpointReport {
    let started = Instant::now();
    let result = match fetch(endpoint, cfg).await {
        Ok(bytes) => parse_bytes(&bytes, &cfg.limits).map_err(PollError::from),
        Err(e) => Err(e),
    };
    EndpointReport {
        endpoint: endpoint.to_string(),
        elapsed: started.elapsed(),
        result,
    }
}

/// Polls every endpoint concurrently (at most `cfg.concurrency` at once) and returns one report
/// per endpoint, in the order given. A cycle is bounded by (connect + read timeout) times
/// ceil(dead endpoints / concurrency), whatever the dead ones do.
pub async fn poll_cycle(endpoints: &[String], cfg: &PollConfig) -> Vec<EndpointReport> {
    let cfg = Arc::new(*cfg);
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let (cfg, permits, endpoint) = (cfg.clone(), permits.clone(), endpoint.clone());
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring only fails if it were; poll anyway.
            let _permit = permits.acquire_owned().await.ok();
            (i, poll_endpoint(&endpoint, &cfg).await)
        });
    }
    let mut reports: Vec<Option<EndpointReport>> = vec![None; endpoints.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, report)) = joined {
            reports[i] = Some(report);
        }
    }
    // A panicked task leaves a hole; report it rather than dropping the endpoint.
    reports
        .into_iter()
        .zip(endpoints)
        .map(|(r, endpoint)| {
            r.unwrap_or_else(|| EndpointReport {
                endpoint: endpoint.clone(),
                elapsed: Duration::ZERO,
                result: Err(PollError::Task("poll task panicked".to_string())),
            })
        })
        .collect()
}
