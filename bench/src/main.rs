//! `sightline-bench`: measures a running Sightline under the load
//! generator's realistic mix (`sightline-loadgen`), the same events the
//! baselines in `bench/baselines/` load. Prints one JSON object:
//!
//! 1. **Fill**: the first `--checkpoint` events as fast as the server takes
//!    them; then the five dashboard questions (and every other query) timed
//!    over what is held, with the resident memory.
//! 2. **Ramp**: open-loop steps of rising rate. A step is kept up with when
//!    every batch was sent on schedule, 99 % of them accepted within
//!    250 ms, and the views held everything within a second of the step's
//!    end; the first step that is not, is the first sign of falling behind.
//!    The sustained rate is the highest rate kept up with (each step also
//!    records the rate it achieved).
//! 3. **The rest** of the events as fast as the server takes them; then the
//!    questions again over all `--events`.
//! 4. **Event-to-view latency** at half the sustained rate: marker page
//!    views, each timed from its send to its appearance in the live feed,
//!    while the background load runs.
//!
//! Events go over HTTP to the ingest API, or with `--nats` straight onto
//! the server's JetStream stream (markers still over HTTP).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Map, Value, json};
use sightline_connectors::NatsConfig;
use sightline_loadgen::{Batch, Generator, Pace, SendReport, ServerProject, Target, Workload};

#[derive(Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7700")]
    url: String,
    #[arg(long, env = "SIGHTLINE_ADMIN_TOKEN", default_value = "")]
    admin_token: String,
    /// Events in all (the workload's day).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The workload's last event time (ms since the epoch), as given to
    /// `sightline loadgen --csv` for the baselines.
    #[arg(long)]
    end_ms: i64,
    /// Also time the questions once this many events are held.
    #[arg(long)]
    checkpoint: Option<u64>,
    /// Timed requests per query, per checkpoint (fewer, but at least 10,
    /// when they take more than 5 s).
    #[arg(long, default_value_t = 100)]
    query_rounds: usize,
    /// The ramp's first rate, events/s.
    #[arg(long, default_value_t = 100_000)]
    ramp_from: u64,
    /// Added to the rate at each step.
    #[arg(long, default_value_t = 30_000)]
    ramp_step: u64,
    #[arg(long, default_value_t = 6.0)]
    step_seconds: f64,
    /// Seconds of markers under the half-rate background load.
    #[arg(long, default_value_t = 15.0)]
    latency_seconds: f64,
    /// The server's pid, to read its resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Batches in flight when sending as fast as the server takes them.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// At a rate (the ramp, the latency's background load), the most
    /// batches in flight: open loop, a batch goes out when it is due
    /// whatever the answers to those before it, as from many browsers. With
    /// only `--concurrency` in flight the sender, not the server, set the
    /// ceiling: a rate above 32 batches per response time cannot be
    /// offered (at 32, 184k events/s was 17 ms a response).
    #[arg(long, default_value_t = 512)]
    open_loop_in_flight: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// This file exists while the rest of the events goes out as fast as
    /// the server takes them: `bench/run.sh` profiles the server then. Never
    /// during the ramp: a profiler on these two cores takes the CPU the ramp
    /// measures (100k events/s kept up with, 84 ms behind at worst; with
    /// `perf record --call-graph dwarf` attached, 86,796/s and 3 s behind).
    /// The questions wait for `<file>.done`, written once the profiler has
    /// exited.
    #[arg(long)]
    profile_flag: Option<std::path::PathBuf>,
    /// Publish straight onto this NATS server's stream instead of the ingest
    /// API.
    #[arg(long)]
    nats: Option<String>,
    #[arg(long, default_value = "SIGHTLINE")]
    nats_stream: String,
}

/// A ramp step whose batches took longer than this to be accepted (p99)
/// is falling behind even if they went out on schedule: as far behind as a
/// batch sent that late.
const MAX_ACK_P99_MS: f64 = 250.0;

/// The workload's project whose dashboard is asked (the busiest).
const ASKED: usize = 0;

struct Bench {
    args: Args,
    http: reqwest::Client,
    projects: Vec<ServerProject>,
    batches: Arc<Vec<Batch>>,
    target: Arc<Target>,
    /// Page views accepted so far, per workload project.
    pageviews: Vec<u64>,
}

fn ms(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1000.0
}

fn percentiles(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples.get(((samples.len() as f64 - 1.0) * p).round() as usize).copied();
    let round = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
    json!({ "p50": round(at(0.5)), "p99": round(at(0.99)), "max": round(samples.last().copied()), "samples": samples.len() })
}

/// The kernel's view of the server's memory, KiB.
fn memory_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server's resident memory once it holds only what it keeps: read
/// every second until it fell by less than `SETTLED_KIB` over the last
/// five readings, at most `SETTLE_LIMIT`. Right after a burst, jemalloc
/// still holds the pages the burst freed (its dirty pages decay over 10 s):
/// 2 to 70 MiB at 10M events in the full runs of 2026-11-28. Returns
/// (KiB, seconds waited).
async fn settled_memory_kib(pid: Option<u32>) -> Option<(u64, f64)> {
    const SETTLED_KIB: u64 = 1024;
    const SETTLE_LIMIT: Duration = Duration::from_secs(30);
    let start = Instant::now();
    let mut readings = vec![memory_kib(pid, "VmRSS:")?];
    while start.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(Duration::from_secs(1)).await;
        readings.push(memory_kib(pid, "VmRSS:")?);
        if let [.., before, _, _, _, _, now] = readings[..]
            && before.saturating_sub(now) < SETTLED_KIB
        {
            break;
        }
    }
    Some((*readings.last()?, (start.elapsed().as_secs_f64() * 10.0).round() / 10.0))
}

impl Bench {
    fn range(&self) -> (i64, i64) {
        // Late events are up to an hour older than the day.
        (self.args.end_ms - 86_400_000 - 3_600_000, self.args.end_ms + 60_000)
    }

    async fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.args.url))
            .bearer_auth(&self.args.admin_token)
            .send()
            .await?;
        if r.status() != 200 {
            bail!("{path_and_query}: {}", r.status());
        }
        Ok(r.json().await?)
    }

    async fn send(&mut self, range: std::ops::Range<usize>, pace: Pace) -> SendReport {
        let report = sightline_loadgen::send(self.batches.clone(), range, self.target.clone(), pace).await;
        for (total, added) in self.pageviews.iter_mut().zip(&report.pageviews_by_project) {
            *total += added;
        }
        report
    }

    /// Waits until every project's page views in the views equal those
    /// accepted; the time it took, ms.
    async fn catch_up(&self) -> anyhow::Result<f64> {
        let started = Instant::now();
        let (from, to) = self.range();
        for (project, expected) in self.projects.iter().zip(&self.pageviews) {
            loop {
                let answer = self
                    .get(&format!("/api/v1/projects/{}/pageviews?interval=day&from={from}&to={to}", project.id))
                    .await?;
                let held = answer["total"]["pageviews"].as_u64().unwrap_or(0);
                if held == *expected {
                    break;
                }
                if started.elapsed() > Duration::from_secs(300) {
                    bail!("project {} holds {held} page views of {expected}", project.id);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(ms(started.elapsed().as_secs_f64()))
    }

    /// The five dashboard questions the baselines answer too, then the
    /// rest of the query API; p50/p99/max per query, and the answers.
    async fn questions(&self, events_held: u64) -> anyhow::Result<Value> {
        let (from, to) = self.range();
        let id = &self.projects[ASKED].id;
        let r = format!("from={from}&to={to}");
        let hour = format!("from={}&to={}", self.args.end_ms - 3_600_000, self.args.end_ms);
        let queries = [
            ("pageviews_per_hour", format!("pageviews?interval=hour&{r}")),
            ("top_pages", format!("breakdown?dimension=page&limit=20&{r}")),
            ("sessions_summary", format!("sessions/summary?{r}")),
            ("top_errors", format!("errors?{r}")),
            ("lcp_p75_per_page", format!("vitals/pages?name=LCP&limit=20&{r}")),
            ("pageviews, 1 h by minute, one path", format!("pageviews?interval=minute&path=/pricing&{hour}")),
            ("events, one name, one property", format!("events?name=signup&prop.plan=pro&{r}")),
            ("vitals LCP", format!("vitals?name=LCP&{r}")),
            ("breakdown referrer", format!("breakdown?dimension=referrer&{r}")),
            ("breakdown entry_page", format!("breakdown?dimension=entry_page&{r}")),
            ("visitors/current", "visitors/current".to_owned()),
        ];
        let mut timings = Map::new();
        let mut answers = Map::new();
        for (name, query) in queries {
            let path = format!("/api/v1/projects/{id}/{query}");
            let answer = self.get(&path).await?;
            let mut samples = Vec::with_capacity(self.args.query_rounds);
            let timing = Instant::now();
            for _ in 0..self.args.query_rounds {
                if samples.len() >= 10 && timing.elapsed() > Duration::from_secs(5) {
                    break;
                }
                let sent = Instant::now();
                let r = self
                    .http
                    .get(format!("{}{path}", self.args.url))
                    .bearer_auth(&self.args.admin_token)
                    .send()
                    .await?;
                r.bytes().await?;
                samples.push(ms(sent.elapsed().as_secs_f64()));
            }
            timings.insert(name.to_owned(), percentiles(samples));
            match name {
                "pageviews_per_hour" => answers.insert("pageviews".into(), answer["total"]["pageviews"].clone()),
                "top_pages" => answers
                    .insert("top_page".into(), json!([answer["rows"][0]["value"], answer["rows"][0]["pageviews"]])),
                "sessions_summary" => answers.insert("sessions".into(), answer["sessions"].clone()),
                "top_errors" => answers.insert("top_error_count".into(), answer["groups"][0]["count"].clone()),
                "lcp_p75_per_page" => answers
                    .insert("lcp_p75_top_page".into(), json!([answer["pages"][0]["path"], answer["pages"][0]["p75"]])),
                _ => None,
            };
        }
        Ok(json!({
            "events_held": events_held,
            "rss_kib": memory_kib(self.args.server_pid, "VmRSS:"),
            "queries_ms": timings,
            "answers": answers,
        }))
    }

    /// Marker page views timed through the live feed while the first
    /// batches are sent again, open loop, at `rate`.
    async fn latency_under_load(&mut self, rate: f64) -> anyhow::Result<Value> {
        let id = self.projects[ASKED].id.clone();
        let mut live = self
            .http
            .get(format!("{}/api/v1/projects/{id}/live", self.args.url))
            .bearer_auth(&self.args.admin_token)
            .send()
            .await?
            .error_for_status()?;
        let limit = Duration::from_secs_f64(self.args.latency_seconds);
        let pace = Pace { rate: Some(rate), concurrency: self.args.open_loop_in_flight, limit: Some(limit) };
        let background = tokio::spawn(sightline_loadgen::send(
            self.batches.clone(),
            0..self.batches.len(),
            self.target.clone(),
            pace,
        ));
        let ingest = format!("{}/api/v1/ingest", self.args.url);
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut buffer = String::new();
        let mut i = 0;
        while started.elapsed() + Duration::from_millis(500) < limit {
            i += 1;
            let marker = format!("/marker/{i}");
            let body = json!({ "events": [{ "type": "pageview", "anonymous_id": "marker", "url": format!("https://site0.example{marker}") }] });
            let sent = Instant::now();
            let r = self
                .http
                .post(&ingest)
                .header("X-Sightline-Key", &self.projects[ASKED].ingest_key)
                .json(&body)
                .send()
                .await?;
            if r.status() != 202 {
                bail!("marker refused: {}", r.status());
            }
            let needle = format!("\"path\":\"{marker}\"");
            while !buffer.contains(&needle) {
                let chunk = tokio::time::timeout(Duration::from_secs(10), live.chunk())
                    .await
                    .context("live feed timed out")??;
                buffer.push_str(&String::from_utf8_lossy(&chunk.context("live feed ended")?));
            }
            samples.push(ms(sent.elapsed().as_secs_f64()));
            buffer.clear();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let background = background.await?;
        let mut out = percentiles(samples);
        out["background_rate"] = json!(rate.round());
        out["background_achieved"] = json!(background.events_per_second().round());
        Ok(out)
    }
}

/// The index of the first batch after `events` events.
fn batches_for(batches: &[Batch], from: usize, events: u64) -> usize {
    let mut sum = 0u64;
    for (i, batch) in batches.iter().enumerate().skip(from) {
        if sum >= events {
            return i;
        }
        sum += batch.events as u64;
    }
    batches.len()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(args.concurrency.max(args.open_loop_in_flight)).build()?;
    let workload = Workload::day(args.seed, args.events, args.end_ms);
    let project_count = workload.projects;
    let projects =
        sightline_loadgen::create_projects(&http, &args.url, &args.admin_token, "bench", project_count).await?;
    let nats = args.nats.as_ref().map(|url| NatsConfig { url: url.clone(), stream: args.nats_stream.clone() });
    let (format, target) = Target::for_projects(http.clone(), &args.url, &projects, nats.as_ref()).await?;
    let prepared = Instant::now();
    let generator = Generator::new(workload);
    let asked_share = generator.project_share(ASKED);
    let batches = Arc::new(sightline_loadgen::batches(generator, args.batch, &format));
    let prepare_s = prepared.elapsed().as_secs_f64();
    eprintln!("prepared {} batches in {prepare_s:.1} s", batches.len());
    let mut bench =
        Bench { args, http, projects, batches, target: Arc::new(target), pageviews: vec![0; project_count] };
    let closed = |concurrency| Pace { rate: None, concurrency, limit: None };
    let mut checkpoints = Vec::new();
    let mut sent = 0u64;

    // 1. Fill.
    let mut next = 0;
    let fill = match bench.args.checkpoint {
        Some(events) => {
            let end = batches_for(&bench.batches, 0, events);
            let report = bench.send(0..end, closed(bench.args.concurrency)).await;
            sent += report.events_accepted;
            next = end;
            let catch_up_ms = bench.catch_up().await?;
            let mut checkpoint = bench.questions(sent).await?;
            checkpoint["catch_up_ms"] = json!(catch_up_ms);
            checkpoints.push(checkpoint);
            eprintln!("fill: {:.0} events/s", report.events_per_second());
            Some(report)
        }
        None => None,
    };

    // 2. Ramp.
    let mut steps = Vec::new();
    let mut sustained: Option<f64> = None;
    let mut rate = bench.args.ramp_from as f64;
    // A tenth of the events is kept for the rest, which the profiler records.
    let ramp_end = batches_for(&bench.batches, 0, bench.args.events - bench.args.events / 10);
    let mut fell_behind = false;
    while next < ramp_end {
        let end = batches_for(&bench.batches, next, (rate * bench.args.step_seconds) as u64);
        if end > ramp_end {
            break;
        }
        let limit = Duration::from_secs_f64(bench.args.step_seconds * 2.0);
        let report = bench
            .send(next..end, Pace { rate: Some(rate), concurrency: bench.args.open_loop_in_flight, limit: Some(limit) })
            .await;
        next = end;
        sent += report.events_accepted;
        let catch_up_ms = bench.catch_up().await?;
        let kept_up = report.batches_refused == 0
            && report.events_sent == report.events_accepted
            && report.max_behind_ms < 250.0
            && report.ack_ms[1] < MAX_ACK_P99_MS
            && catch_up_ms < 1000.0;
        eprintln!(
            "ramp {rate:.0}/s: achieved {:.0}, behind {:.0} ms, catch-up {catch_up_ms} ms",
            report.events_per_second(),
            report.max_behind_ms
        );
        let mut step = report.to_json();
        step["offered_per_second"] = json!(rate);
        step["catch_up_ms"] = json!(catch_up_ms);
        step["kept_up"] = json!(kept_up);
        steps.push(step);
        if !kept_up {
            fell_behind = true;
            break;
        }
        // The rate offered: a step kept up with took every batch on
        // schedule. What it achieved reads lower by the time its last
        // batches took to be accepted (259,890 events/s over a 5 s step at
        // 260k, with those acks 5 ms): the step's `events_per_second`.
        sustained = Some(rate);
        rate += bench.args.ramp_step as f64;
    }

    // 3. The rest, then the questions over everything.
    if let Some(flag) = &bench.args.profile_flag {
        std::fs::write(flag, b"")?;
    }
    let rest = bench.send(next..bench.batches.len(), closed(bench.args.concurrency)).await;
    if let Some(flag) = &bench.args.profile_flag {
        std::fs::remove_file(flag)?;
        let mut done = flag.clone().into_os_string();
        done.push(".done");
        let done = std::path::PathBuf::from(done);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    sent += rest.events_accepted;
    let catch_up_ms = bench.catch_up().await?;
    let mut checkpoint = bench.questions(sent).await?;
    checkpoint["catch_up_ms"] = json!(catch_up_ms);
    if let Some((kib, waited)) = settled_memory_kib(bench.args.server_pid).await {
        checkpoint["rss_settled_kib"] = json!(kib);
        checkpoint["rss_settle_seconds"] = json!(waited);
    }
    checkpoints.push(checkpoint);

    // 4. Latency at half the sustained rate.
    let half = sustained.unwrap_or(rest.events_per_second().max(20_000.0)) / 2.0;
    let latency = bench.latency_under_load(half).await?;

    println!(
        "{}",
        json!({
            "events": bench.args.events,
            "transport": if bench.args.nats.is_some() { "nats" } else { "http" },
            "batch": bench.args.batch,
            "concurrency": bench.args.concurrency,
            "open_loop_in_flight": bench.args.open_loop_in_flight,
            "asked_project_share": asked_share,
            "prepare_seconds": prepare_s,
            "fill": fill.map(|r| r.to_json()),
            "ramp": steps,
            "sustained_events_per_second": sustained.map(f64::round),
            // Whether the ramp found a step it fell behind at, or ran out of
            // events first (the sustained rate is then a lower bound).
            "ramp_fell_behind": fell_behind,
            "rest": rest.to_json(),
            "rest_profiled": bench.args.profile_flag.is_some(),
            "checkpoints": checkpoints,
            "event_to_view_ms": latency,
            "rss_peak_kib": memory_kib(bench.args.server_pid, "VmHWM:"),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_for_counts_events_not_batches() {
        let batch = |events| Batch { project: 0, agent: 0, events, pageviews: 0, body: Default::default() };
        let batches = vec![batch(100), batch(100), batch(50), batch(100)];
        assert_eq!(batches_for(&batches, 0, 150), 2);
        assert_eq!(batches_for(&batches, 1, 150), 3);
        assert_eq!(batches_for(&batches, 0, 10_000), 4);
        assert_eq!(batches_for(&batches, 0, 0), 0);
    }

    #[test]
    fn percentiles_of_a_hundred_samples() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p["p50"].as_f64(), p["p99"].as_f64(), p["max"].as_f64()), (Some(51.0), Some(99.0), Some(100.0)));
    }
}
