//! Alert latency: the time from the 202 of the event that crosses a rule's
//! threshold to the webhook receiver's request, under background ingest.
//!
//! Each of `--projects` projects gets a webhook channel pointing at a
//! receiver in this process and the rule "more than 0 errors in the last
//! second". Each project then repeats: send one error (the clock starts at
//! its 202), wait for the firing at the receiver (the clock stops), wait
//! for the resolve. Meanwhile page views go to another project at
//! `--background-rate` events/s. Prints JSON with the latency percentiles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7700")]
    url: String,
    #[arg(long)]
    admin_token: String,
    /// Firings to time, over all projects.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Projects timed at once.
    #[arg(long, default_value_t = 10)]
    projects: usize,
    /// Page views per second sent meanwhile to another project.
    #[arg(long, default_value_t = 20_000)]
    background_rate: u64,
}

/// Per project: where the receiver reports its deliveries (state, arrival).
type Routes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<(String, Instant)>>>>;

async fn receive(State(routes): State<Routes>, Json(body): Json<Value>) -> &'static str {
    let at = Instant::now();
    let project = body["project"]["id"].as_str().unwrap_or_default().to_owned();
    let state = body["state"].as_str().unwrap_or_default().to_owned();
    if let Some(route) = routes.lock().unwrap().get(&project) {
        let _ = route.send((state, at));
    }
    "ok"
}

async fn post_json(http: &reqwest::Client, args: &Args, path: &str, body: Value) -> anyhow::Result<Value> {
    let r = http.post(format!("{}{path}", args.url)).bearer_auth(&args.admin_token).json(&body).send().await?;
    let status = r.status();
    let answer: Value = r.json().await?;
    if !status.is_success() {
        bail!("{path}: {status} {answer}");
    }
    Ok(answer)
}

async fn ingest(http: &reqwest::Client, url: &str, key: &str, events: Value) -> anyhow::Result<()> {
    let r = http.post(format!("{url}/api/v1/ingest?key={key}")).json(&json!({ "events": events })).send().await?;
    if r.status() != 202 {
        bail!("ingest answered {}", r.status());
    }
    Ok(())
}

/// When the next delivery of `state` arrived.
async fn delivery(deliveries: &mut mpsc::UnboundedReceiver<(String, Instant)>, state: &str) -> anyhow::Result<Instant> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), deliveries.recv()).await {
            Ok(Some((s, at))) if s == state => return Ok(at),
            Ok(Some(_)) => continue,
            Ok(None) => bail!("the receiver stopped"),
            Err(_) => bail!("no {state} delivery within 30 s"),
        }
    }
}

/// Times firings of one project's rule until `remaining` runs out.
async fn time_firings(
    http: reqwest::Client,
    url: String,
    key: String,
    mut deliveries: mpsc::UnboundedReceiver<(String, Instant)>,
    remaining: Arc<Mutex<usize>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let error = json!([{ "type": "error", "url": "https://bench.example/", "anonymous_id": "bench", "error_type": "Error",
                         "message": "bench", "stack": "Error: bench\n    at f (https://bench.example/a.js:1:1)" }]);
    loop {
        {
            let mut left = remaining.lock().unwrap();
            if *left == 0 {
                return Ok(latencies);
            }
            *left -= 1;
        }
        ingest(&http, &url, &key, error.clone()).await?;
        let accepted = Instant::now();
        let fired = delivery(&mut deliveries, "firing").await?;
        latencies.push(fired.saturating_duration_since(accepted));
        delivery(&mut deliveries, "resolved").await?;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let routes: Routes = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().route("/hook", post(receive)).with_state(routes.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut timers = Vec::new();
    let remaining = Arc::new(Mutex::new(args.samples));
    for i in 0..args.projects {
        let project = post_json(&http, &args, "/api/v1/projects", json!({ "name": format!("alerts-{i}") })).await?;
        let id = project["id"].as_str().context("a project id")?.to_owned();
        let key = project["ingest_key"].as_str().context("an ingest key")?.to_owned();
        let channel = post_json(
            &http,
            &args,
            &format!("/api/v1/projects/{id}/channels"),
            json!({ "name": "bench", "kind": "webhook", "rate_limit_per_min": 600,
                    "config": { "url": hook, "secret": "a bench secret of some length" } }),
        )
        .await?;
        post_json(
            &http,
            &args,
            &format!("/api/v1/projects/{id}/alerts"),
            json!({ "name": "any error", "metric": "error_count", "comparison": "gt", "threshold": 0, "window_s": 1,
                    "channels": [channel["id"]] }),
        )
        .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        routes.lock().unwrap().insert(id, tx);
        timers.push(tokio::spawn(time_firings(http.clone(), args.url.clone(), key, rx, remaining.clone())));
    }

    // Background page views, in batches of 100, at the asked rate.
    let background = post_json(&http, &args, "/api/v1/projects", json!({ "name": "background" })).await?;
    let background_key = background["ingest_key"].as_str().context("an ingest key")?.to_owned();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let load = (args.background_rate > 0).then(|| {
        let (http, url, sent) = (http.clone(), args.url.clone(), sent.clone());
        let interval = Duration::from_secs_f64(100.0 / args.background_rate as f64);
        tokio::spawn(async move {
            let batch: Value =
                (0..100).map(|i| json!({ "type": "pageview", "url": format!("https://bg.example/p{}", i % 20), "anonymous_id": format!("v{i}") })).collect();
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                let (http, url, key, batch, sent) = (http.clone(), url.clone(), background_key.clone(), batch.clone(), sent.clone());
                tokio::spawn(async move {
                    if ingest(&http, &url, &key, batch).await.is_ok() {
                        sent.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        })
    });

    let started = Instant::now();
    let mut latencies = Vec::new();
    for timer in timers {
        latencies.extend(timer.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(load) = load {
        load.abort();
    }
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    println!(
        "{}",
        json!({
            "samples": latencies.len(),
            "projects": args.projects,
            "background_events_per_s": (sent.load(std::sync::atomic::Ordering::Relaxed) as f64 / elapsed).round(),
            "latency_ms": { "p50": ms(pct(0.50)), "p90": ms(pct(0.90)), "p99": ms(pct(0.99)), "max": ms(pct(1.0)) },
        })
    );
    Ok(())
}
