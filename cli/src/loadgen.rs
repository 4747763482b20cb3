//! `sightline loadgen`: sends a seeded, realistic day of web traffic to a
//! Sightline over HTTP or straight onto its JetStream stream, or writes the
//! same events as CSV for other databases.

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use sightline_connectors::NatsConfig;
use sightline_loadgen::{Generator, Pace, Target, Workload};

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Events in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// The same seed and settings give the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Projects (sites), with a Zipf spread of the traffic.
    #[arg(long, default_value_t = 20)]
    projects: usize,
    /// The last event's time, ms since the epoch (default: now); the events
    /// cover the `--span-minutes` before it.
    #[arg(long)]
    end_ms: Option<i64>,
    /// How much event time the events cover, ending at `--end-ms`.
    #[arg(long, default_value_t = 1_440, value_parser = clap::value_parser!(u32).range(1..=43_200))]
    span_minutes: u32,
    /// Write the events as CSV to this file and send nothing (the columns
    /// are in bench/baselines/README.md).
    #[arg(long, conflicts_with = "nats")]
    csv: Option<PathBuf>,
    /// The Sightline server: projects are made there, and events sent to
    /// its ingest API unless `--nats` is given.
    #[arg(long, env = "SIGHTLINE_SERVER", default_value = "http://127.0.0.1:7700")]
    server: String,
    /// The admin token, to make the projects.
    #[arg(long, env = "SIGHTLINE_ADMIN_TOKEN", hide_env_values = true, default_value = "")]
    admin_token: String,
    /// Publish encoded batches straight onto this NATS server's stream (the
    /// server must run with the same `--nats` and `--nats-stream`).
    #[arg(long)]
    nats: Option<String>,
    #[arg(long, default_value = "SIGHTLINE")]
    nats_stream: String,
    /// Events per second, on a fixed schedule (0: as fast as the server
    /// takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Batches in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let end_ms = args.end_ms.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    });
    let workload = Workload {
        projects: args.projects,
        span_ms: i64::from(args.span_minutes) * 60_000,
        ..Workload::day(args.seed, args.events, end_ms)
    };
    if let Some(path) = &args.csv {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let rows = sightline_loadgen::write_csv(Generator::new(workload), &mut out)?;
        std::io::Write::flush(&mut out)?;
        println!("{}", json!({ "csv": path, "rows": rows, "end_ms": end_ms }));
        return Ok(());
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let projects =
        sightline_loadgen::create_projects(&client, &args.server, &args.admin_token, "loadgen", args.projects).await?;
    let nats = args.nats.as_ref().map(|url| NatsConfig { url: url.clone(), stream: args.nats_stream.clone() });
    let (format, target) = Target::for_projects(client, &args.server, &projects, nats.as_ref()).await?;
    let generator = Generator::new(workload);
    let shares: Vec<f64> = (0..args.projects).map(|p| generator.project_share(p)).collect();
    let batches = Arc::new(sightline_loadgen::batches(generator, args.batch, &format));
    let pace = Pace {
        rate: (args.rate > 0).then_some(args.rate as f64),
        concurrency: args.concurrency,
        limit: None::<Duration>,
    };
    let report = sightline_loadgen::send(batches.clone(), 0..batches.len(), Arc::new(target), pace).await;
    let projects: Vec<_> =
        projects.iter().zip(shares).map(|(p, share)| json!({ "id": p.id, "share": share })).collect();
    println!("{}", json!({ "projects": projects, "end_ms": end_ms, "sent": report.to_json() }));
    Ok(())
}
