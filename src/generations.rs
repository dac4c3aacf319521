//! A bounded map that keeps what is used: two generations of at most `generation` entries
//! each. Inserting a new key into a full young generation drops the old one and ages the
//! young; a hit in the old generation moves the entry back to the young. So the entries in
//! use stay, and the map never holds more than twice `generation` entries, with no
//! per-entry bookkeeping. The caches of verified access tokens and of memberships use it.

use std::{collections::HashMap, hash::Hash};

#[derive(Debug)]
pub struct Generations<K, V> {
    /// Entries per generation; 0 holds nothing.
    generation: usize,
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Generations<K, V> {
    /// At most `capacity` entries in all (0: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        Self { generation: capacity / 2, young: HashMap::new(), old: HashMap::new() }
    }

    /// Whether anything can be kept at all.
    pub fn enabled(&self) -> bool {
        self.generation > 0
    }

    /// The value of `key`, moved to the young generation if it was in the old one.
    pub fn get(&mut self, key: K) -> Option<V> {
        if let Some(value) = self.young.get(&key) {
            return Some(value.clone());
        }
        let value = self.old.remove(&key)?;
        self.insert(key, value.clone());
        Some(value)
    }

    pub fn insert(&mut self, key: K, value: V) {
        if !self.enabled() {
            return;
        }
        if self.young.len() >= self.generation && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    /// Forgets `key` (in the young generation, where a `get` leaves it).
    pub fn remove(&mut self, key: &K) {
        self.young.remove(key);
        self.old.remove(key);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.young = HashMap::new();
        self.old = HashMap::new();
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_stays_bounded_and_keeps_what_is_used() {
        let mut map = Generations::new(10);
        map.insert(0, "kept");
        for i in 1..1_000 {
            map.insert(i, "other");
            // An entry in use survives every turn of the generations.
            assert_eq!(map.get(0), Some("kept"));
            assert!(map.len() <= 10, "{} entries", map.len());
        }
        assert_eq!(map.get(1), None, "an unused old entry was dropped");
        map.remove(&0);
        assert_eq!(map.get(0), None);
        map.clear();
        assert!(map.is_empty());
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut map = Generations::new(0);
        map.insert(1, 1);
        assert_eq!(map.get(1), None);
        assert!(map.is_empty() && !map.enabled());
    }
}
