//! Strings the dataflow sees as small integers.
//!
//! Project ids and paths repeat in every event; inside the dataflow they are
//! `u32` symbols, so records are small, `Copy`, and sort without comparing
//! strings. The read model turns symbols back into strings when it answers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sightline_operators::Symbol;

#[derive(Default)]
struct Table {
    ids: HashMap<Arc<str>, Symbol>,
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

    /// The symbol of `name`, if it was ever interned.
    pub fn lookup(&self, name: &str) -> Option<Symbol> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).ids.get(name).copied()
    }

    /// The string of a symbol made by this interner.
    pub fn name(&self, id: Symbol) -> Arc<str> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).names[id as usize].clone()
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
}
