//! Distinct counts of visitors and users: Cloudflare's `cardinality-estimator`
//! (HyperLogLog++ with an exact small-set representation).
//!
//! Up to two visitors take the sketch's 8 bytes and no heap; up to 128 take
//! an array of their 25-bit hash prefixes, exact but for hash collisions
//! (about one in 2,000 at 128); beyond that, a 3 KB HyperLogLog with 4,096
//! registers, whose standard error is 1.6 %. Sketches merge, so a range or a
//! filtered set of cells is the union of theirs, and they never forget: a
//! cell leaves whole with its bucket.

use cardinality_estimator::CardinalityEstimator;

/// A sketch of distinct 64-bit hashes (visitors and users are hashed at
/// ingest).
#[derive(Debug, Default, Clone)]
pub(super) struct VisitorSketch(CardinalityEstimator<u64>);

impl VisitorSketch {
    /// Adds one visitor, by its hash.
    pub(super) fn insert(&mut self, hash: u64) {
        self.0.insert_hash(hash);
    }

    /// Adds every visitor of `other`.
    pub(super) fn merge(&mut self, other: &VisitorSketch) {
        self.0.merge(&other.0);
    }

    /// How many distinct visitors were added.
    pub(super) fn count(&self) -> i64 {
        self.0.estimate() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    #[test]
    fn small_sets_are_exact_and_large_ones_within_the_error() {
        let mut sketch = VisitorSketch::default();
        for i in 0..128 {
            sketch.insert(hash(i));
            sketch.insert(hash(i));
            assert_eq!(sketch.count(), i as i64 + 1);
        }
        for i in 128..200_000 {
            sketch.insert(hash(i));
        }
        let error = (sketch.count() - 200_000).abs() as f64 / 200_000.0;
        assert!(error < 0.05, "{} for 200,000", sketch.count());
    }

    #[test]
    fn a_merge_is_the_union() {
        let (mut a, mut b) = (VisitorSketch::default(), VisitorSketch::default());
        (0..60).for_each(|i| a.insert(hash(i)));
        (30..100).for_each(|i| b.insert(hash(i)));
        a.merge(&b);
        assert_eq!(a.count(), 100);
        let mut big = VisitorSketch::default();
        (0..50_000).for_each(|i| big.insert(hash(i)));
        a.merge(&big);
        let error = (a.count() - 50_000).abs() as f64 / 50_000.0;
        assert!(error < 0.05, "{}", a.count());
    }
}
