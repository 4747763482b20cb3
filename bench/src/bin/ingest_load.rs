//! The fixed-pattern load of the benchmarks before the load generator, kept
//! for `bench/error-cpu.sh` and for comparing with the figures measured with
//! it. Drives a running Sightline over HTTP and measures it:
//! sustained ingest throughput (batches of 100 page views, or a mix of
//! every event type, many requests in flight), the time until the views
//! reflect everything accepted, event-to-view latency through the live
//! feed, and the latency of every query endpoint over what was loaded.
//! Prints one JSON object.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use sightline_bench::fixtures::{MINIFIED, RELEASE, error_event, source_map};

#[derive(Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7700")]
    url: String,
    #[arg(long, env = "SIGHTLINE_ADMIN_TOKEN", default_value = "")]
    admin_token: String,
    /// Seconds of sustained load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Marker events timed through the live feed.
    #[arg(long, default_value_t = 200)]
    markers: usize,
    /// Send error events (minified 12-frame stacks, with their source map
    /// uploaded first) instead of page views.
    #[arg(long)]
    errors: bool,
    /// With `--errors`: every error event's stack text is unique (its bundle
    /// URL carries a build query), so no processed stack is ever reused.
    #[arg(long)]
    unique_stacks: bool,
    /// A mix of every event type instead of page views only: 70 % page
    /// views, 15 % custom events with properties, 10 % web vitals, 5 %
    /// errors (repeated stacks).
    #[arg(long)]
    mixed: bool,
    /// Offer at most this many events per second (0: as many as the server
    /// takes). Comparing the CPU per event of two builds at one offered
    /// rate keeps the pipeline's per-tick work equally shared.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// After the load, time this many requests to each query endpoint.
    #[arg(long, default_value_t = 0)]
    query_rounds: usize,
    /// Delete this JetStream stream (on 127.0.0.1:4222) and exit: the
    /// benchmark's NATS runs leave gigabytes behind otherwise.
    #[arg(long)]
    delete_nats_stream: Option<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Bodies after which the events repeat (see [`bodies`]).
const PATTERN_BODIES: usize = 256;

/// What the load sends.
#[derive(Clone, Copy)]
enum Workload {
    Pageviews,
    Errors { unique_stacks: bool },
    Mixed,
}

/// Distinct pre-serialized batches, each with its number of page views: a
/// Zipf-ish spread of 50 paths and 20k visitors, so the views do real
/// distinct work. The events repeat every [`PATTERN_BODIES`] bodies but for
/// their stacks' build query (unique-stack mode), so the views see the same
/// events with repeated and with unique stacks, and the two modes differ
/// only in the stack processing they ask for.
fn bodies(batch: usize, count: usize, workload: Workload) -> Vec<(Vec<u8>, u64)> {
    const SEED: u64 = 0x5eed;
    let mut seed = SEED;
    let mut built = 0;
    (0..count)
        .map(|body| {
            if body % PATTERN_BODIES == 0 {
                seed = SEED;
            }
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let mut pageviews = 0;
            let events: Vec<Value> = (0..batch)
                .map(|_| {
                    let r = next();
                    let visitor = format!("v{}", next() % 20_000);
                    let path = 50 / (1 + (r % 50)); // skewed towards few pages
                    let url = format!("https://shop.example/p/{path}");
                    let kind = match workload {
                        Workload::Pageviews => 0,
                        Workload::Errors { .. } => 99,
                        Workload::Mixed => (r >> 8) % 100,
                    };
                    match kind {
                        0..70 => {
                            pageviews += 1;
                            let referrer = ["https://search.example/", "https://news.example/a", ""][(r >> 16) as usize % 3];
                            json!({ "type": "pageview", "anonymous_id": visitor, "url": url, "referrer": referrer })
                        }
                        70..85 => {
                            let name = ["signup", "add_to_cart", "checkout", "search", "share"][(r >> 16) as usize % 5];
                            let plan = ["free", "pro", "team"][(r >> 20) as usize % 3];
                            json!({
                                "type": "event", "name": name, "anonymous_id": visitor, "url": url,
                                "props": { "plan": plan, "seats": (r >> 24) % 10 },
                            })
                        }
                        85..95 => {
                            let (name, scale) = [("LCP", 2500.0), ("INP", 200.0), ("CLS", 0.1), ("FCP", 1800.0), ("TTFB", 800.0), ("FID", 100.0)][(r >> 16) as usize % 6];
                            let value = scale * (0.2 + ((r >> 24) % 1000) as f64 / 400.0);
                            json!({ "type": "vital", "name": name, "value": value, "anonymous_id": visitor, "url": url })
                        }
                        _ => {
                            built += 1;
                            let build = match workload {
                                Workload::Errors { unique_stacks: true } => built,
                                _ => 0,
                            };
                            error_event(&visitor, (r % 4) as u32, build)
                        }
                    }
                })
                .collect();
            (serde_json::to_vec(&json!({ "events": events })).unwrap(), pageviews)
        })
        .collect()
}

/// Times `rounds` sequential requests to each query endpoint; p50, p99 and
/// max in ms per endpoint.
async fn query_latencies(
    http: &reqwest::Client,
    args: &Args,
    project_id: &str,
    rounds: usize,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let to = now_ms() + 60_000;
    let day = format!("from={}&to={to}", to - 86_400_000);
    let hour = format!("from={}&to={to}", to - 3_600_000);
    let endpoints = [
        ("pageviews, 24 h by hour", format!("pageviews?interval=hour&{day}")),
        ("pageviews, 1 h by minute, one path", format!("pageviews?interval=minute&path=/p/2&{hour}")),
        ("sessions/summary, 24 h", format!("sessions/summary?{day}")),
        ("events, 24 h, one name, one property", format!("events?name=signup&prop.plan=pro&{day}")),
        ("vitals LCP, 24 h", format!("vitals?name=LCP&{day}")),
        ("errors, 24 h", format!("errors?{day}")),
        ("breakdown page, 24 h", format!("breakdown?dimension=page&{day}")),
        ("breakdown referrer, 24 h", format!("breakdown?dimension=referrer&{day}")),
        ("breakdown entry_page, 24 h", format!("breakdown?dimension=entry_page&{day}")),
        ("visitors/current", "visitors/current".to_owned()),
    ];
    let mut out = serde_json::Map::new();
    if rounds == 0 {
        return Ok(out);
    }
    for (name, query) in endpoints {
        let url = format!("{}/api/v1/projects/{project_id}/{query}", args.url);
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let sent = Instant::now();
            let r = http.get(&url).bearer_auth(&args.admin_token).send().await?;
            if r.status() != 200 {
                bail!("{name}: {}", r.status());
            }
            r.bytes().await?;
            times.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let ms = |v: f64| (v * 1000.0).round() / 1000.0;
        out.insert(
            name.to_owned(),
            json!({ "p50": ms(percentile(&times, 0.5)), "p99": ms(percentile(&times, 0.99)), "max": ms(times.last().copied().unwrap_or(f64::NAN)) }),
        );
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(stream) = &args.delete_nats_stream {
        let client = async_nats::connect("nats://127.0.0.1:4222").await?;
        async_nats::jetstream::new(client).delete_stream(stream).await?;
        return Ok(());
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).build()?;
    let project: Value = http
        .post(format!("{}/api/v1/projects", args.url))
        .bearer_auth(&args.admin_token)
        .json(&json!({ "name": "bench" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let project_id = project["id"].as_str().context("project id")?.to_owned();
    let key = project["ingest_key"].as_str().context("ingest key")?.to_owned();
    let ingest_url = format!("{}/api/v1/ingest", args.url);

    // 1. Sustained throughput.
    let workload = match (args.errors, args.mixed) {
        (true, _) => Workload::Errors { unique_stacks: args.unique_stacks },
        (false, true) => Workload::Mixed,
        (false, false) => Workload::Pageviews,
    };
    if args.errors || args.mixed {
        http.post(format!("{}/api/v1/projects/{project_id}/sourcemaps", args.url))
            .query(&[("release", RELEASE), ("url", MINIFIED)])
            .bearer_auth(&args.admin_token)
            .body(source_map())
            .send()
            .await?
            .error_for_status()?;
    }
    // Unique stacks need several times more distinct events than
    // `RecentStacks` remembers (131,072 slots in the server), or the
    // cycling bodies would repeat what it still holds.
    let distinct_bodies = if args.unique_stacks { 24 * PATTERN_BODIES } else { PATTERN_BODIES };
    let bodies = Arc::new(bodies(args.batch, distinct_bodies, workload));
    let accepted = Arc::new(AtomicU64::new(0));
    let pageviews_accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    // With `--rate`, batch n is due n * batch / rate seconds after the start.
    let batch_interval = (args.rate > 0).then(|| Duration::from_secs_f64(args.batch as f64 / args.rate as f64));
    let batches_issued = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let concurrency = args.concurrency;
    for worker in 0..concurrency {
        let (http, url, key, bodies, accepted, refused) =
            (http.clone(), ingest_url.clone(), key.clone(), bodies.clone(), accepted.clone(), refused.clone());
        let pageviews_accepted = pageviews_accepted.clone();
        let batches_issued = batches_issued.clone();
        tasks.push(tokio::spawn(async move {
            // Workers take turns through the bodies: the unique-stack bodies must
            // not be sent by several workers at once.
            let mut i = worker;
            while Instant::now() < deadline {
                if let Some(interval) = batch_interval {
                    let n = batches_issued.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep_until((started + interval.mul_f64(n as f64)).into()).await;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let (body, pageviews) = bodies[i % bodies.len()].clone();
                i += concurrency;
                let r = http
                    .post(&url)
                    .header("X-Sightline-Key", &key)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 202 => {
                        let answer: Value = r.json().await.unwrap_or(Value::Null);
                        accepted.fetch_add(answer["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        pageviews_accepted.fetch_add(pageviews, Ordering::Relaxed);
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    let pageviews_accepted = pageviews_accepted.load(Ordering::Relaxed);
    let throughput = accepted as f64 / elapsed;

    // 2. Until the views hold everything accepted.
    let caught_up_started = Instant::now();
    let to = now_ms() + 60_000;
    loop {
        let (view, sep) = if args.errors { ("errors", "?") } else { ("pageviews?interval=day&", "") };
        let answer: Value = http
            .get(format!("{}/api/v1/projects/{project_id}/{view}{sep}from={}&to={to}", args.url, to - 172_800_000))
            .bearer_auth(&args.admin_token)
            .send()
            .await?
            .json()
            .await?;
        let held = if args.errors {
            answer["groups"].as_array().map(|g| g.iter().filter_map(|g| g["count"].as_u64()).sum::<u64>())
        } else {
            answer["total"]["pageviews"].as_u64()
        };
        let expected = if args.errors { accepted } else { pageviews_accepted };
        if held == Some(expected) {
            break;
        }
        if caught_up_started.elapsed() > Duration::from_secs(120) {
            bail!("views did not reach {expected} events: {answer}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let catch_up_ms = caught_up_started.elapsed().as_secs_f64() * 1000.0;

    // 3. Event-to-view latency: a marker page view, timed from send to its
    // appearance in the live feed.
    let mut live = http
        .get(format!("{}/api/v1/projects/{project_id}/live", args.url))
        .bearer_auth(&args.admin_token)
        .send()
        .await?
        .error_for_status()?;
    let mut latencies = Vec::with_capacity(args.markers);
    let mut buffer = String::new();
    for i in 0..args.markers {
        let marker = format!("/marker/{i}");
        let body = json!({ "events": [{ "type": "pageview", "anonymous_id": "m", "url": format!("https://shop.example{marker}") }] });
        let sent = Instant::now();
        let r = http.post(&ingest_url).header("X-Sightline-Key", &key).json(&body).send().await?;
        if r.status() != 202 {
            bail!("marker refused: {}", r.status());
        }
        let needle = format!("\"path\":\"{marker}\"");
        while !buffer.contains(&needle) {
            let chunk =
                tokio::time::timeout(Duration::from_secs(10), live.chunk()).await.context("live feed timed out")??;
            buffer.push_str(&String::from_utf8_lossy(&chunk.context("live feed ended")?));
        }
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        buffer.clear();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort_by(f64::total_cmp);

    // 4. Query latency over everything loaded.
    let queries = query_latencies(&http, &args, &project_id, args.query_rounds).await?;

    println!(
        "{}",
        json!({
            "seconds": elapsed,
            "concurrency": args.concurrency,
            "batch": args.batch,
            "events_accepted": accepted,
            "requests_refused": refused.load(Ordering::Relaxed),
            "events_per_second": throughput.round(),
            "catch_up_ms": catch_up_ms.round(),
            "event_to_view_ms": {
                "p50": percentile(&latencies, 0.50),
                "p99": percentile(&latencies, 0.99),
                "max": latencies.last().copied().unwrap_or(f64::NAN),
            },
            "query_ms": (!queries.is_empty()).then_some(queries),
        })
    );
    Ok(())
}
