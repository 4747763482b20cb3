//! `sightline`: the one binary.

mod cluster;
mod loadgen;
mod serve;
mod sourcemaps;

use clap::{Parser, Subcommand};
use tikv_jemallocator::Jemalloc;
use tracing_subscriber::EnvFilter;

/// The dataflow allocates and frees many small records per event; glibc's
/// allocator spent a quarter of the pipeline's time on them (perf, see
/// bench/README.md). jemalloc is as fast here as mimalloc was, and held
/// 1.64 GB where mimalloc held 1.83 GB for the same 10M events. Its
/// background thread (the `background_threads` feature) gives freed pages
/// back on schedule even while the threads that freed them are idle: 10 s
/// after 10M events, 967–985 MiB resident against 978–1,001 MiB without
/// (three runs each, bench/README.md).
#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

#[derive(Parser)]
#[command(name = "sightline", version, about = "Real-time web analytics, error tracking and performance monitoring")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: ingest, pipeline, query API.
    Serve(serve::ServeArgs),
    /// Run one process of a cluster's dataflow: a timely process that
    /// archives its share of the JetStream partitions (process 0 also holds
    /// the views, runs alerting and publishes the view feed).
    Worker(cluster::WorkerArgs),
    /// Run an API node of a cluster: ingest to JetStream and the query API
    /// over views fed by the workers; any number, stateless.
    Api(cluster::ApiArgs),
    /// Source maps for readable stack traces.
    #[command(subcommand)]
    Sourcemaps(sourcemaps::Command),
    /// Send a seeded, realistic day of traffic to a Sightline (over HTTP or
    /// onto its NATS stream), or write the same events as CSV.
    Loadgen(loadgen::LoadgenArgs),
    /// Print the OpenAPI document the server serves at /api/v1/openapi.json
    /// (the SDKs' types are generated from it: `sdk/openapi.json`).
    Openapi,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SIGHTLINE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // async-nats brings rustls with ring, object_store's S3 client with
    // aws-lc-rs: with two providers compiled in, rustls needs one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::serve(args)),
        Command::Worker(args) => runtime.block_on(cluster::worker(args)),
        Command::Api(args) => runtime.block_on(cluster::api(args)),
        Command::Sourcemaps(command) => runtime.block_on(sourcemaps::run(command)),
        Command::Loadgen(args) => runtime.block_on(loadgen::run(args)),
        Command::Openapi => {
            use utoipa::OpenApi;
            println!("{}", sightline_query_api::ApiDoc::openapi().to_pretty_json()?);
            Ok(())
        }
    }
}
