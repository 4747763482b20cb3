//! Strings the dataflow sees as small integers.
//!
//! Project ids and paths repeat in every event; inside the dataflow they are
//! `u32` symbols, so records are small, `Copy`, and sort without comparing
//! strings. The read model turns symbols back into strings when it answers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use sightline_model::PropValue;
use sightline_operators::Symbol;

#[derive(Default)]
struct Table {
    /// Hashed with foldhash, randomly seeded: SipHash of every path, site
    /// and property an event carries took a tenth of the ingest threads'
    /// time (perf).
    ids: HashMap<Arc<str>, Symbol, foldhash::fast::RandomState>,
    names: Vec<Arc<str>>,
}

/// A two-way map between strings and symbols; symbols are never reused.
#[derive(Default)]
pub struct Interner(RwLock<Table>);

impl Interner {
    /// The symbol of `name`, made on first sight.
    pub fn intern(&self, name: &str) -> Symbol {
        if let Some(id) = self.lookup(name) {
            return id;
        }
        let mut table = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = table.ids.get(name) {
            return id;
        }
        let id = Symbol::try_from(table.names.len()).expect("fewer than 2^32 distinct names");
        let name: Arc<str> = Arc::from(name);
        table.names.push(name.clone());
        table.ids.insert(name, id);
        id
    }

    /// Interning for one batch of events, under one read lock.
    pub fn batch(&self) -> BatchNames<'_> {
        BatchNames { interner: self, table: None }
    }

    /// The symbol of `name`, if it was ever interned.
    pub fn lookup(&self, name: &str) -> Option<Symbol> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).ids.get(name).copied()
    }

    /// The string of a symbol made by this interner.
    pub fn name(&self, id: Symbol) -> Arc<str> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).names[id as usize].clone()
    }

    /// How many names there are; the next new one gets this symbol.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names made since the first `from`, in the order of their symbols.
    pub fn since(&self, from: usize) -> Vec<Arc<str>> {
        let table = self.0.read().unwrap_or_else(|e| e.into_inner());
        table.names.get(from..).map(<[Arc<str>]>::to_vec).unwrap_or_default()
    }
}

/// Interning for one batch of events: the table's read lock is taken once
/// for the batch, not once for each of the eight or so strings of each
/// event (the lock's and the lookups' share of the ingest threads was a
/// tenth, perf at 230k events/s). A new name lets the read lock go before
/// the write lock is taken. Hold it for a batch's rows only, and take no
/// other lock under it that waits on interning.
pub struct BatchNames<'a> {
    interner: &'a Interner,
    table: Option<RwLockReadGuard<'a, Table>>,
}

impl BatchNames<'_> {
    /// [`Interner::intern`] under the batch's read lock.
    pub fn intern(&mut self, name: &str) -> Symbol {
        let interner = self.interner;
        let table = self.table.get_or_insert_with(|| interner.0.read().unwrap_or_else(|e| e.into_inner()));
        if let Some(&id) = table.ids.get(name) {
            return id;
        }
        self.table = None;
        interner.intern(name)
    }
}

/// Property sets of custom events, each interned whole (its canonical
/// text) so a cell carries one symbol, with its pairs kept for the read
/// model.
#[derive(Default)]
pub struct PropSets(RwLock<HashMap<Symbol, PropPairs, foldhash::fast::RandomState>>);

/// A property set's (key, value) pairs, sorted by key.
pub type PropPairs = Arc<[(Symbol, Symbol)]>;

impl PropSets {
    /// The symbol of a property set, made (with its pairs) on first sight.
    pub fn intern(&self, names: &mut BatchNames, props: &BTreeMap<String, PropValue>) -> Symbol {
        let values: Vec<(&str, String)> = props.iter().map(|(k, v)| (k.as_str(), prop_text(v))).collect();
        // Length-prefixed, so two different sets never share a text.
        let mut canonical = String::from("props");
        for (key, value) in &values {
            let _ = write!(canonical, ";{}:{key}{}:{value}", key.len(), value.len());
        }
        let set = names.intern(&canonical);
        if !self.0.read().unwrap_or_else(|e| e.into_inner()).contains_key(&set) {
            let pairs: PropPairs = values.iter().map(|(k, v)| (names.intern(k), names.intern(v))).collect();
            self.0.write().unwrap_or_else(|e| e.into_inner()).insert(set, pairs);
        }
        set
    }

    /// Registers a property set whose symbol another interner made (a
    /// replica's), from its canonical text; `None` if the text is not one.
    /// Its keys and values must already be names.
    pub fn register(&self, names: &Interner, set: Symbol, canonical: &str) -> Option<()> {
        let mut rest = canonical.strip_prefix("props")?;
        let mut pairs = Vec::new();
        let field = |rest: &mut &str| -> Option<Symbol> {
            let (len, tail) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let text = tail.get(..len)?;
            *rest = &tail[len..];
            names.lookup(text)
        };
        while let Some(tail) = rest.strip_prefix(';') {
            rest = tail;
            let key = field(&mut rest)?;
            let value = field(&mut rest)?;
            pairs.push((key, value));
        }
        if !rest.is_empty() {
            return None;
        }
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(set, pairs.into());
        Some(())
    }

    /// The (key, value) pairs of a set made by [`PropSets::intern`].
    pub fn pairs(&self, set: Symbol) -> PropPairs {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(&set).cloned().unwrap_or_else(|| Arc::new([]))
    }
}

/// A property value as filters and breakdowns show it.
pub fn prop_text(value: &PropValue) -> String {
    match value {
        PropValue::Str(s) => s.clone(),
        PropValue::Bool(b) => b.to_string(),
        PropValue::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        PropValue::Num(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_round_trip_and_are_stable() {
        let interner = Interner::default();
        let a = interner.intern("/cart");
        let b = interner.intern("/");
        assert_ne!(a, b);
        assert_eq!(interner.intern("/cart"), a);
        assert_eq!(&*interner.name(b), "/");
        assert_eq!(interner.lookup("/nope"), None);
    }

    #[test]
    fn property_sets_are_one_symbol_with_their_pairs() {
        let (names, sets) = (Interner::default(), PropSets::default());
        let props = |pairs: &[(&str, PropValue)]| -> BTreeMap<String, PropValue> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        };
        let a = sets.intern(
            &mut names.batch(),
            &props(&[("plan", PropValue::Str("pro".into())), ("seats", PropValue::Num(3.0))]),
        );
        let b = sets.intern(
            &mut names.batch(),
            &props(&[("seats", PropValue::Num(3.0)), ("plan", PropValue::Str("pro".into()))]),
        );
        assert_eq!(a, b, "order does not matter");
        let pairs: Vec<(Arc<str>, Arc<str>)> =
            sets.pairs(a).iter().map(|(k, v)| (names.name(*k), names.name(*v))).collect();
        assert_eq!(pairs, vec![("plan".into(), "pro".into()), ("seats".into(), "3".into())]);
        // A value holding the separator cannot pose as two pairs.
        let tricky = sets.intern(&mut names.batch(), &props(&[("plan", PropValue::Str("pro;5:seats1:3".into()))]));
        assert_ne!(tricky, a);
        assert_eq!(prop_text(&PropValue::Num(2.5)), "2.5");
        assert_eq!(prop_text(&PropValue::Bool(true)), "true");
    }
}
