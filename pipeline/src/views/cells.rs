//! A bucket's cells: a hash map while the bucket takes its events, then,
//! once sealed, one sorted slice of exactly its cells.
//!
//! A hash table holds its entries at 44–87 % of its slots, with a control
//! byte per slot: a 32-byte cell took about 50 bytes in one. Most buckets
//! are closed (at 10M events over a day, all but the last few minutes and
//! hours), so the read model seals a bucket a little after it ends: its
//! cells are sorted into a slice that takes 32, and each cell gives back its
//! spare room ([`Cell::seal`]).
//!
//! Late events still count in a sealed bucket: a cell it has is changed in
//! place (found by binary search); a new one goes to a small hash map beside
//! the slice, which is merged into it once it holds a quarter as many.
//! A cell whose count goes back to nothing stays in the slice, skipped,
//! until that merge.

use std::hash::Hash;

use super::CellMap;

/// What a map of [`Cells`] holds.
pub(super) trait Cell: Default {
    /// Counts nothing (its events were retracted): skipped by readers and
    /// dropped from the map.
    fn is_empty(&self) -> bool;

    /// Gives back spare room: no more cells of the bucket are coming, or
    /// few.
    fn seal(&mut self) {}
}

impl Cell for i32 {
    fn is_empty(&self) -> bool {
        *self == 0
    }
}

/// Cells by key: see the module's doc.
#[derive(Debug)]
pub(super) struct Cells<K, V> {
    /// Sorted by key; empty until sealed.
    sealed: Box<[(K, V)]>,
    /// Every cell until sealed; then the cells made since.
    open: CellMap<K, V>,
}

impl<K, V> Default for Cells<K, V> {
    fn default() -> Self {
        Cells { sealed: Box::default(), open: CellMap::default() }
    }
}

impl<K: Copy + Ord + Hash, V: Cell> Cells<K, V> {
    /// The cell of `key`, unless it has none (or an empty one).
    pub(super) fn get(&self, key: &K) -> Option<&V> {
        let cell = match self.sealed.binary_search_by(|(k, _)| k.cmp(key)) {
            Ok(at) => Some(&self.sealed[at].1),
            Err(_) => self.open.get(key),
        };
        cell.filter(|cell| !cell.is_empty())
    }

    /// Changes the cell of `key` (a new, empty one if it has none) and
    /// returns what `change` returns; a cell left empty leaves.
    pub(super) fn update<R>(&mut self, key: K, change: impl FnOnce(&mut V) -> R) -> R {
        if let Ok(at) = self.sealed.binary_search_by(|(k, _)| k.cmp(&key)) {
            return change(&mut self.sealed[at].1);
        }
        let cell = self.open.entry(key).or_default();
        let out = change(cell);
        if cell.is_empty() {
            self.open.remove(&key);
        } else if !self.sealed.is_empty() && self.open.len() > self.sealed.len() / 4 {
            self.seal();
        }
        out
    }

    /// Each cell that counts something, sealed ones first (in key order).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let sealed = self.sealed.iter().map(|(k, v)| (k, v));
        sealed.chain(self.open.iter()).filter(|(_, v)| !v.is_empty())
    }

    /// Whether no cell counts anything.
    pub(super) fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Sorts every cell into the slice (dropping the empty ones) and seals
    /// each.
    pub(super) fn seal(&mut self) {
        // Into a vector of exactly the cells kept (an open cell is never
        // empty: `update` removes it), so that neither growing it nor making
        // it a boxed slice copies it.
        let kept = self.sealed.iter().filter(|(_, v)| !v.is_empty()).count() + self.open.len();
        let mut cells: Vec<(K, V)> = Vec::with_capacity(kept);
        cells.extend(std::mem::take(&mut self.sealed).into_vec().into_iter().filter(|(_, v)| !v.is_empty()));
        cells.extend(std::mem::take(&mut self.open));
        cells.sort_unstable_by_key(|(k, _)| *k);
        cells.iter_mut().for_each(|(_, v)| v.seal());
        #[cfg(test)]
        SEALED.with(|n| n.set(n.get() + cells.len()));
        self.sealed = cells.into_boxed_slice();
    }
}

#[cfg(test)]
thread_local! {
    /// Cells sealed on this thread: tells a test that its buckets were.
    pub(super) static SEALED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Adds `diff` to a key's count; a count that reaches 0 leaves.
pub(super) fn add_count<K: Copy + Ord + Hash>(counts: &mut Cells<K, i32>, key: K, diff: i64) {
    counts.update(key, |n| *n = super::add_i32(*n, diff));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(cells: &Cells<u32, i32>) -> Vec<(u32, i32)> {
        let mut all: Vec<(u32, i32)> = cells.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn sealed_cells_count_as_open_ones_did() {
        let mut cells = Cells::default();
        for key in 0..100u32 {
            add_count(&mut cells, key % 10, 1);
        }
        let before = counts(&cells);
        cells.seal();
        assert_eq!(counts(&cells), before);
        assert!(cells.open.is_empty());
        assert_eq!(cells.sealed.len(), 10);
        // A late event of a sealed cell changes it in place; a new key waits
        // beside the slice.
        add_count(&mut cells, 3, 5);
        add_count(&mut cells, 42, 1);
        assert_eq!(cells.get(&3), Some(&15));
        assert_eq!(cells.get(&42), Some(&1));
        assert_eq!(cells.open.len(), 1);
        // A sealed cell counted back to nothing is skipped, and found again.
        add_count(&mut cells, 7, -10);
        assert_eq!(cells.get(&7), None);
        assert!(!counts(&cells).iter().any(|(k, _)| *k == 7));
        add_count(&mut cells, 7, 2);
        assert_eq!(cells.get(&7), Some(&2));
        add_count(&mut cells, 7, -2);
        // Past a quarter of the slice, new cells are merged in, and the
        // empty one leaves.
        add_count(&mut cells, 43, 1);
        add_count(&mut cells, 44, 1);
        assert!(cells.open.is_empty());
        assert_eq!(cells.sealed.len(), 12);
        assert_eq!(counts(&cells).len(), 12);
        assert_eq!(cells.get(&44), Some(&1));
        for key in 0..10 {
            let n = cells.get(&key).copied().unwrap_or(0);
            add_count(&mut cells, key, -i64::from(n));
        }
        for key in 42..45 {
            add_count(&mut cells, key, -1);
        }
        assert!(cells.is_empty());
    }
}
