//! Event-time buckets.

use serde::{Deserialize, Serialize};

/// The width of an event-time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub const ALL: [Interval; 3] = [Interval::Minute, Interval::Hour, Interval::Day];
    /// The intervals the read models keep buckets of: a question by day
    /// reads the hours of each day. Day buckets held 222 MB of 1,340 at 10M
    /// events over a day (bench/README.md), and with the window at 30 days
    /// they answered only ranges longer than the whole window.
    pub const KEPT: [Interval; 2] = [Interval::Minute, Interval::Hour];

    /// The interval whose buckets answer a question by this one.
    pub fn kept(self) -> Interval {
        match self {
            Interval::Day => Interval::Hour,
            kept => kept,
        }
    }

    /// Width in ms.
    pub fn millis(self) -> i64 {
        match self {
            Interval::Minute => 60_000,
            Interval::Hour => 3_600_000,
            Interval::Day => 86_400_000,
        }
    }

    /// The start of the bucket holding `ts` (UTC).
    pub fn bucket_of(self, ts: i64) -> i64 {
        ts.div_euclid(self.millis()) * self.millis()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_in_utc() {
        assert_eq!(Interval::Minute.bucket_of(119_999), 60_000);
        assert_eq!(Interval::Hour.bucket_of(3_600_000 * 5 + 7), 3_600_000 * 5);
        assert_eq!(Interval::Day.bucket_of(-1), -86_400_000);
        assert_eq!(Interval::parse("hour"), Some(Interval::Hour));
        assert_eq!(Interval::parse("week"), None);
    }
}
