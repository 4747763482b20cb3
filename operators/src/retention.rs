//! The temporal filter behind retention.

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::operators::vec::Map;

use crate::Time;

/// Keeps each record until the tick `expiry(record)` and retracts it then.
/// A record already expired when it arrives is dropped. Views built on the
/// result shrink on their own as time passes.
pub fn expire_at<'s, D>(
    records: VecCollection<'s, Time, D>,
    expiry: impl Fn(&D) -> i64 + 'static,
) -> VecCollection<'s, Time, D>
where
    D: Clone + 'static,
{
    records
        .inner
        .flat_map(move |(data, time, diff): (D, Time, isize)| {
            let expires = u64::try_from(expiry(&data)).unwrap_or(0);
            (expires > time).then(|| [(data.clone(), time, diff), (data, expires, -diff)]).into_iter().flatten()
        })
        .as_collection()
}
