//! The JetStream bus against the machine's real NATS server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sightline_connectors::{Archive, Bus, Deliver, NatsBus, NatsConfig, Partitions};
use sightline_model::Envelope;

fn config() -> NatsConfig {
    if std::net::TcpStream::connect_timeout(&"127.0.0.1:4222".parse().unwrap(), Duration::from_secs(2)).is_err() {
        panic!("NATS with JetStream is not listening on 127.0.0.1:4222; start it with `./scripts/services.sh`");
    }
    let unique = format!("{}_{}", std::process::id(), Instant::now().elapsed().as_nanos() ^ rand_suffix());
    NatsConfig { url: "nats://127.0.0.1:4222".into(), stream: format!("TEST_{unique}") }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Removes a test's stream so runs leave nothing behind on the server.
async fn delete_stream(config: &NatsConfig) {
    let client = async_nats::connect(config.url.as_str()).await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(&config.stream).await;
}

fn envelope() -> Envelope {
    Envelope { batch_id: uuid::Uuid::now_v7(), project_id: "proj_test".into(), received_at: 1, events: Vec::new() }
}

fn collecting() -> (Deliver, Arc<Mutex<Vec<Envelope>>>) {
    let seen: Arc<Mutex<Vec<Envelope>>> = Arc::default();
    let sink = seen.clone();
    (Arc::new(move |e| sink.lock().unwrap().push(e)), seen)
}

async fn wait_for(seen: &Mutex<Vec<Envelope>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} delivered", seen.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_retried_publish_is_stored_and_delivered_once() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    let bus = NatsBus::connect(&config).await.unwrap();
    let (deliver, seen) = collecting();
    bus.start_archiver(archive.clone(), deliver, HashSet::new(), &Partitions::All).await.unwrap();
    let bus = Bus::Nats(Box::new(bus));
    let first = envelope();
    bus.publish(first.clone()).await.unwrap();
    bus.publish(first.clone()).await.unwrap(); // the client retried: same batch id
    let second = envelope();
    bus.publish(second.clone()).await.unwrap();
    wait_for(&seen, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*seen.lock().unwrap(), vec![first, second]);
    drop(archive);
    let reopened = Archive::open(dir.path()).unwrap();
    let mut seqs = Vec::new();
    reopened.replay(|b| seqs.push(b.source_seq)).unwrap();
    assert_eq!(seqs, vec![Some(1), Some(2)]);
    delete_stream(&config).await;
}

#[tokio::test]
async fn a_restarted_archiver_skips_what_it_archived_and_gets_the_rest_at_once() {
    let config = config();
    let dir = tempfile::tempdir().unwrap();
    let bus = NatsBus::connect(&config).await.unwrap();
    let envelopes: Vec<Envelope> = (0..3).map(|_| envelope()).collect();
    let bus = Bus::Nats(Box::new(bus));
    for e in &envelopes {
        bus.publish(e.clone()).await.unwrap();
    }
    // As if a previous process archived sequence 1 and 2 and died before
    // acknowledging anything.
    let archive = Archive::open(dir.path()).unwrap();
    archive.append(Some(1), envelopes[0].encode()).await.unwrap();
    archive.append(Some(2), envelopes[1].encode()).await.unwrap();
    let (deliver, seen) = collecting();
    let started = Instant::now();
    let Bus::Nats(nats) = &bus else { unreachable!() };
    nats.start_archiver(archive.clone(), deliver, HashSet::from([1, 2]), &Partitions::All).await.unwrap();
    wait_for(&seen, 1).await;
    assert!(started.elapsed() < Duration::from_secs(5), "redelivery waited for ack_wait");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*seen.lock().unwrap(), vec![envelopes[2].clone()]);
    delete_stream(&config).await;
}
