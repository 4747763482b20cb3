//! The metrics the connectors export (the HTTP side's are in
//! `sightline_query_api::telemetry`).

/// Group commits of the archive: one `fdatasync` each.
pub const ARCHIVE_SYNCS: &str = "sightline_archive_syncs_total";
/// Archive segments deleted because every event in them is past retention.
pub const ARCHIVE_SEGMENTS_DELETED: &str = "sightline_archive_segments_deleted_total";
/// Sealed archive segments uploaded to the object store.
pub const ARCHIVE_SEGMENTS_SHIPPED: &str = "sightline_archive_segments_shipped_total";
/// JetStream messages not yet archived: pending delivery plus delivered and
/// not yet acknowledged (NATS mode's bus lag).
pub const NATS_CONSUMER_PENDING: &str = "sightline_nats_consumer_pending_messages";
/// Stream sequences remembered to skip redeliveries.
pub const NATS_REDELIVERY_GUARD: &str = "sightline_nats_redelivery_guard_sequences";
/// Shared with the ingest: events rejected, by `reason`.
pub const EVENTS_REJECTED: &str = "sightline_events_rejected_total";
