//! The metrics of the HTTP side, named in one place (the connectors' are in
//! `sightline_connectors::telemetry`).

/// Events accepted, by `type`.
pub const EVENTS_ACCEPTED: &str = "sightline_events_accepted_total";
/// Events rejected, by `reason` (a rejection or body error code).
pub const EVENTS_REJECTED: &str = sightline_connectors::telemetry::EVENTS_REJECTED;
/// Requests refused as a whole, by `reason` (`invalid_key`, `body_too_large`, ...).
pub const REQUESTS_REFUSED: &str = "sightline_ingest_requests_refused_total";
/// Batches handed to the pipeline that no worker has taken yet.
pub const BUS_LAG_BATCHES: &str = "sightline_bus_lag_batches";
/// How far the views trail the wall clock, in seconds.
pub const VIEW_FRESHNESS_SECONDS: &str = "sightline_view_freshness_seconds";

/// Ingest keys looked up in the store (cache misses), by `result`
/// (`known`, `unknown`).
pub const INGEST_KEY_LOOKUPS: &str = "sightline_ingest_key_lookups_total";

pub fn key_looked_up(known: bool) {
    let result = if known { "known" } else { "unknown" };
    metrics::counter!(INGEST_KEY_LOOKUPS, "result" => result).increment(1);
}

/// Counts an event or request that was not accepted.
pub fn rejected(reason: &'static str, events: u64) {
    metrics::counter!(EVENTS_REJECTED, "reason" => reason).increment(events);
}

pub fn refused(reason: &'static str) {
    metrics::counter!(REQUESTS_REFUSED, "reason" => reason).increment(1);
}

/// Account requests refused, by `reason` (`csrf`, `wrong_credentials`,
/// `throttled`).
pub const AUTH_REFUSED: &str = "sightline_auth_refused_total";

pub fn auth_refused(reason: &'static str) {
    metrics::counter!(AUTH_REFUSED, "reason" => reason).increment(1);
}

/// Audit entries that could not be recorded.
pub const AUDIT_FAILURES: &str = "sightline_audit_failures_total";
