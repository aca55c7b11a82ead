//! Delivery of notifications to consumers, off the request path.
//!
//! Requests hand messages over with [`Notifier::send`], which never blocks. A dedicated thread
//! routes them to one bounded queue per consumer address, each drained by its own task that
//! POSTs with retries; a slow or dead consumer fills only its own queue, and what overflows it
//! is dropped and counted rather than ever holding anything up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use vcds_soap::SoapVersion;
use vcds_wsrf::{actions, Epr};

const ROUTER_QUEUE: usize = 10_000;
const CONSUMER_QUEUE: usize = 256;
const ATTEMPTS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(300);

struct Delivery {
    consumer: Epr,
    body: String,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Delivery>,
    pub counters: Arc<Counters>,
}

impl Notifier {
    /// Starts the delivery thread.
    pub fn start() -> std::io::Result<Notifier> {
        let (tx, rx) = mpsc::channel(ROUTER_QUEUE);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("vcds-notifier".to_string())
            .spawn(move || actix_rt::System::new().block_on(route(rx, c)))?;
        Ok(Notifier { tx, counters })
    }

    /// Queues a Notify body for `consumer`; never waits.
    pub fn send(&self, consumer: Epr, body: String) {
        if self.tx.try_send(Delivery { consumer, body }).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("notification dropped: delivery queue full");
        }
    }
}

async fn route(mut rx: mpsc::Receiver<Delivery>, counters: Arc<Counters>) {
    let client = awc::Client::builder().timeout(TIMEOUT).finish();
    let mut queues: HashMap<String, mpsc::Sender<Delivery>> = HashMap::new();
    while let Some(d) = rx.recv().await {
        let address = d.consumer.address.clone();
        let queue = queues
            .entry(address.clone())
            .or_insert_with(|| spawn_consumer(client.clone(), counters.clone()));
        match queue.try_send(d) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(consumer = %address, "notification dropped: consumer queue full");
            }
            Err(mpsc::error::TrySendError::Closed(d)) => {
                let fresh = spawn_consumer(client.clone(), counters.clone());
                let _ = fresh.try_send(d);
                queues.insert(address, fresh);
            }
        }
    }
}

fn spawn_consumer(client: awc::Client, counters: Arc<Counters>) -> mpsc::Sender<Delivery> {
    let (tx, mut rx) = mpsc::channel::<Delivery>(CONSUMER_QUEUE);
    actix_rt::spawn(async move {
        loop {
            // An idle consumer's task ends (the router starts a fresh one when needed again);
            // closing first means a message that raced in is still delivered, never lost.
            let next = match actix_rt::time::timeout(IDLE, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    rx.close();
                    rx.recv().await
                }
            };
            let Some(d) = next else { break };
            let envelope = vcds_soap::write_request(
                SoapVersion::V11,
                actions::NOTIFY,
                &d.consumer.address,
                &d.consumer.header_blocks(),
                &d.body,
            );
            let mut delay = Duration::from_millis(200);
            let mut ok = false;
            for attempt in 1..=ATTEMPTS {
                let sent = client
                    .post(&d.consumer.address)
                    .insert_header(("Content-Type", "text/xml; charset=utf-8"))
                    .insert_header(("SOAPAction", format!("\"{}\"", actions::NOTIFY)))
                    .send_body(envelope.clone())
                    .await;
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        ok = true;
                        break;
                    }
                    Ok(resp) => {
                        tracing::debug!(consumer = %d.consumer.address, status = %resp.status(), attempt, "consumer refused notification")
                    }
                    Err(e) => {
                        tracing::debug!(consumer = %d.consumer.address, error = %e, attempt, "notification not delivered")
                    }
                }
                if attempt < ATTEMPTS {
                    actix_rt::time::sleep(delay).await;
                    delay *= 3;
                }
            }
            let counter = if ok {
                &counters.delivered
            } else {
                &counters.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if !ok {
                tracing::warn!(consumer = %d.consumer.address, "notification given up after {ATTEMPTS} attempts");
            }
        }
    });
    tx
}
