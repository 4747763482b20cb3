//! The ceiling of raw NATS JetStream on this machine: messages of
//! `--size` bytes published to a file-backed stream with every publish
//! acknowledged (up to `--in-flight` awaiting their ack), then read back
//! through a durable pull consumer acknowledging each message. Sightline's
//! NATS mode is measured against these rates. Prints one JSON object.

use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    #[arg(long, default_value_t = 300)]
    size: usize,
    /// Publishes awaiting their acknowledgement at once (on this machine
    /// 256 gave 133k/s, 1,024 172k/s, 4,096 188k/s).
    #[arg(long, default_value_t = 4096)]
    in_flight: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = async_nats::connect(args.nats.as_str()).await.context("connecting to NATS")?;
    let js = jetstream::new(client);
    let name = format!("CEILING_{}", std::process::id());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.>", name.to_ascii_lowercase())],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let subject = format!("{}.events", name.to_ascii_lowercase());
    let payload = bytes::Bytes::from(vec![b'x'; args.size]);

    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for _ in 0..args.messages {
        if pending.len() >= args.in_flight {
            pending.next().await.context("an ack")??;
        }
        let ack = js.publish(subject.clone(), payload.clone()).await?;
        pending.push(ack.into_future());
    }
    while let Some(ack) = pending.next().await {
        ack?;
    }
    let publish_s = started.elapsed().as_secs_f64();

    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("ceiling".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer.stream().max_messages_per_batch(1_000).messages().await?;
    let mut read = 0u64;
    while read < args.messages {
        let message = messages.next().await.context("the stream ended early")?.map_err(|e| anyhow::anyhow!(e))?;
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
        read += 1;
    }
    let consume_s = started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    println!(
        "{}",
        json!({
            "messages": args.messages,
            "message_bytes": args.size,
            "publish_per_second": (args.messages as f64 / publish_s).round(),
            "consume_per_second": (args.messages as f64 / consume_s).round(),
        })
    );
    Ok(())
}
