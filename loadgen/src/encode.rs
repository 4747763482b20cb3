//! The workload's events as the three consumers want them: JSON batches
//! for the ingest API, encoded envelopes for the JetStream stream (what the
//! ingest would publish), and CSV rows for the baselines' databases.

use std::io::Write;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use sightline_model::{
    ClientEvent, Envelope, EventKind, IngestContext, PropValue, UserAgentInfo, enrich, referrer_domain,
};

use crate::workload::{GeneratedEvent, USER_AGENTS};

/// A batch of one project's events from one browser, ready to send.
#[derive(Debug, Clone)]
pub struct Batch {
    pub project: usize,
    /// Index into [`USER_AGENTS`]: the `User-Agent` the batch is sent with.
    pub agent: usize,
    pub events: u32,
    pub pageviews: u32,
    pub body: Bytes,
}

/// How batches are encoded.
pub enum BatchFormat {
    /// `{"events": [...]}` for `POST /api/v1/ingest`.
    IngestJson,
    /// An [`Envelope`] of enriched events for these server project ids (by
    /// workload project index), errors grouped as the ingest would (no
    /// source maps). Their `received_at` is when the batches are made, not
    /// when they are sent: seconds earlier in a benchmark, which no view
    /// but `visitors/current` and alert windows would notice.
    Envelope { project_ids: Vec<String> },
}

/// Groups events into batches of up to `size`, per project and browser (a
/// browser's SDK sends only its own events), in the order they fill up.
pub fn batches(events: impl Iterator<Item = GeneratedEvent>, size: usize, format: &BatchFormat) -> Vec<Batch> {
    let mut pending: Vec<Vec<ClientEvent>> = Vec::new();
    let mut out = Vec::new();
    let received_at = now_ms();
    let contexts: Vec<UserAgentInfo> = USER_AGENTS.iter().map(|(ua, _)| UserAgentInfo::parse(Some(ua))).collect();
    let flush = |project: usize, agent: usize, events: Vec<ClientEvent>, out: &mut Vec<Batch>| {
        let pageviews = events.iter().filter(|e| matches!(e.kind, EventKind::Pageview { .. })).count() as u32;
        let count = events.len() as u32;
        let body = match format {
            BatchFormat::IngestJson => {
                let events: Vec<Value> = events.iter().map(ingest_json).collect();
                serde_json::to_vec(&json!({ "events": events })).expect("JSON of plain values")
            }
            BatchFormat::Envelope { project_ids } => {
                let ctx = IngestContext::new(project_ids[project].clone(), received_at, contexts[agent].clone());
                let events = events
                    .into_iter()
                    .map(|e| {
                        let mut event = enrich(e, &ctx);
                        if matches!(event.kind, EventKind::Error { .. }) {
                            sightline_errors::process_error(&mut event, &|_| None);
                        }
                        event
                    })
                    .collect();
                Envelope { batch_id: uuid::Uuid::now_v7(), project_id: ctx.project_id, received_at, events }.encode()
            }
        };
        out.push(Batch { project, agent, events: count, pageviews, body: body.into() });
    };
    for generated in events {
        let slot = generated.project * USER_AGENTS.len() + generated.agent;
        if pending.len() <= slot {
            pending.resize_with(slot + 1, Vec::new);
        }
        pending[slot].push(generated.event);
        if pending[slot].len() >= size {
            let full = std::mem::replace(&mut pending[slot], Vec::with_capacity(size));
            flush(generated.project, generated.agent, full, &mut out);
        }
    }
    for (slot, rest) in pending.into_iter().enumerate() {
        if !rest.is_empty() {
            flush(slot / USER_AGENTS.len(), slot % USER_AGENTS.len(), rest, &mut out);
        }
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn prop_json(value: &PropValue) -> Value {
    match value {
        PropValue::Bool(b) => json!(b),
        PropValue::Num(n) => json!(n),
        PropValue::Str(s) => json!(s),
    }
}

/// One event in the ingest API's JSON, as an SDK sends it.
pub fn ingest_json(event: &ClientEvent) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(event.kind.type_name()));
    out.insert("anonymous_id".into(), json!(event.anonymous_id));
    let optional = [("session_id", &event.session_id), ("url", &event.url), ("release", &event.release)];
    for (field, value) in optional {
        if let Some(value) = value {
            out.insert(field.into(), json!(value));
        }
    }
    if let Some(ts) = event.ts {
        out.insert("ts".into(), json!(ts));
    }
    match &event.kind {
        EventKind::Pageview { referrer, title } => {
            if let Some(referrer) = referrer {
                out.insert("referrer".into(), json!(referrer));
            }
            if let Some(title) = title {
                out.insert("title".into(), json!(title));
            }
        }
        EventKind::Event { name, props } => {
            out.insert("name".into(), json!(name));
            out.insert("props".into(), props.iter().map(|(k, v)| (k.clone(), prop_json(v))).collect());
        }
        EventKind::Error { error_type, message, stack, .. } => {
            for (field, value) in [("error_type", error_type), ("message", message), ("stack", stack)] {
                if let Some(value) = value {
                    out.insert(field.into(), json!(value));
                }
            }
        }
        EventKind::Vital { name, value } => {
            out.insert("name".into(), json!(name.as_str()));
            out.insert("value".into(), json!(value));
        }
    }
    Value::Object(out)
}

/// The CSV columns, in order (see `bench/baselines/README.md`).
pub const CSV_HEADER: &str =
    "project_id,ts,type,name,anonymous_id,session_id,path,referrer,device,browser,value,props,error_type,message,stack";

/// The name a workload project has in the CSV.
pub fn csv_project(project: usize) -> String {
    format!("proj_{project}")
}

/// Writes the events as CSV (RFC 4180, with [`CSV_HEADER`]): one row per
/// event, with the path, referring site, device and browser the ingest
/// derives from them.
pub fn write_csv(events: impl Iterator<Item = GeneratedEvent>, out: &mut impl Write) -> std::io::Result<u64> {
    let agents: Vec<UserAgentInfo> = USER_AGENTS.iter().map(|(ua, _)| UserAgentInfo::parse(Some(ua))).collect();
    writeln!(out, "{CSV_HEADER}")?;
    let mut rows = 0;
    for GeneratedEvent { project, agent, event } in events {
        let agent = &agents[agent];
        let url = event.url.as_deref();
        let (mut name, mut referrer, mut value, mut props) =
            (String::new(), String::new(), String::new(), String::new());
        let (mut error_type, mut message, mut stack) = (String::new(), String::new(), String::new());
        match &event.kind {
            EventKind::Pageview { referrer: r, .. } => referrer = referrer_domain(r.as_deref(), url).into_owned(),
            EventKind::Event { name: n, props: p } => {
                name = n.clone();
                props = Value::Object(p.iter().map(|(k, v)| (k.clone(), prop_json(v))).collect()).to_string();
            }
            EventKind::Vital { name: n, value: v } => {
                name = n.as_str().to_owned();
                value = v.to_string();
            }
            EventKind::Error { error_type: t, message: m, stack: s, .. } => {
                error_type = t.clone().unwrap_or_default();
                message = m.clone().unwrap_or_default();
                stack = s.clone().unwrap_or_default();
            }
        }
        let fields = [
            csv_project(project),
            event.ts.unwrap_or_default().to_string(),
            event.kind.type_name().to_owned(),
            name,
            event.anonymous_id.clone(),
            event.session_id.clone().unwrap_or_default(),
            event.path.clone(),
            referrer,
            agent.device.as_str().to_owned(),
            agent.browser.clone(),
            value,
            props,
            error_type,
            message,
            stack,
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_csv_field(out, field)?;
        }
        out.write_all(b"\n")?;
        rows += 1;
    }
    Ok(rows)
}

fn write_csv_field(out: &mut impl Write, field: &str) -> std::io::Result<()> {
    if field.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", field.replace('"', "\"\""))
    } else {
        out.write_all(field.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Generator, Workload};
    use sightline_model::{Encoding, Format, decode_body};

    fn workload() -> Workload {
        Workload::day(3, 3_000, 1_800_000_000_000)
    }

    #[test]
    fn every_ingest_body_validates_back_to_the_generated_events() {
        let generated: Vec<GeneratedEvent> = Generator::new(workload()).collect();
        let batches = batches(generated.iter().cloned(), 100, &BatchFormat::IngestJson);
        assert_eq!(batches.iter().map(|b| b.events as usize).sum::<usize>(), generated.len());
        assert!(batches.iter().all(|b| b.events <= 100));
        let mut decoded = Vec::new();
        for batch in &batches {
            for mut wire in decode_body(&batch.body, Format::Json, Encoding::Identity).unwrap().events {
                decoded.push((batch.project, sightline_model::validate_event(&mut wire).unwrap()));
            }
        }
        let mut expected: Vec<_> = generated.into_iter().map(|g| (g.project, g.event)).collect();
        let key = |(p, e): &(usize, ClientEvent)| (*p, e.ts, e.session_id.clone(), format!("{:?}", e.kind));
        expected.sort_by_key(key);
        decoded.sort_by_key(key);
        assert_eq!(decoded, expected);
    }

    #[test]
    fn envelopes_carry_enriched_grouped_events_of_their_project() {
        let ids: Vec<String> = (0..20).map(|p| format!("proj_server_{p}")).collect();
        let batches = batches(Generator::new(workload()), 50, &BatchFormat::Envelope { project_ids: ids.clone() });
        let mut errors = 0;
        for batch in &batches {
            let envelope = Envelope::decode(&batch.body).unwrap();
            assert_eq!(envelope.project_id, ids[batch.project]);
            assert_eq!(envelope.events.len(), batch.events as usize);
            for event in &envelope.events {
                assert_eq!(event.browser, UserAgentInfo::parse(Some(USER_AGENTS[batch.agent].0)).browser);
                if let EventKind::Error { group, .. } = &event.kind {
                    errors += 1;
                    assert_eq!(group.as_ref().map(|g| g.basis.as_str()), Some("in_app_frames"), "{event:?}");
                }
            }
        }
        assert!(errors > 100);
    }

    #[test]
    fn csv_rows_quote_multiline_stacks_and_match_the_header() {
        let mut out = Vec::new();
        let rows = write_csv(Generator::new(workload()), &mut out).unwrap();
        assert_eq!(rows, 3_000);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(CSV_HEADER));
        // Every record has 15 fields; quoted fields may hold newlines and commas.
        let (mut records, mut fields, mut quoted, mut chars) = (0, 1, false, text.chars().peekable());
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields += 1,
                '\n' if !quoted => {
                    assert_eq!(fields, 15, "record {records}");
                    records += 1;
                    fields = 1;
                }
                _ => {}
            }
        }
        assert_eq!(records, 3_001);
        assert!(text.contains(",error,,") && text.contains("\"TypeError: "));
    }
}
