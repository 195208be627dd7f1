//! The small collections a rollup keeps: calls per name ([`Tally`]) and the
//! few smallest values of a kind ([`Smallest`]).
//!
//! A row sees a handful of operations, user agents or source addresses, so
//! both are sorted vectors: one allocation each, searched in place. Trees
//! cost a node of hundreds of bytes per row before the first value, and
//! building, merging and dropping them was most of the time spent folding.
//! (A tally that does get many names moves to a tree; `Smallest` never
//! holds more than its few.) Names and values are `CompactString`s, which
//! hold up to 24 bytes in place: operation names, user-agent families and
//! IPv4 addresses take no allocation of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use compact_str::CompactString;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Calls per name, sorted by name: operations, indexes, user-agent families
/// or error codes of one row.
///
/// A sorted vector while it holds few names; past [`FEW_NAMES`] a B-tree,
/// so that a forged trail giving one row thousands of names (each record
/// may bring a new one) costs `n log n` rather than `n²` to fold.
#[derive(Clone, Default)]
pub struct Tally(Names);

/// How many names a [`Tally`] keeps in a sorted vector.
pub const FEW_NAMES: usize = 32;

#[derive(Clone)]
enum Names {
    Few(Vec<(CompactString, u64)>),
    Many(BTreeMap<CompactString, u64>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Few(Vec::new())
    }
}

impl Tally {
    /// An empty tally.
    pub const fn new() -> Self {
        Tally(Names::Few(Vec::new()))
    }

    /// Adds `by` to `name`'s count.
    pub fn add(&mut self, name: &str, by: u64) {
        match &mut self.0 {
            Names::Few(names) => match names.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                Ok(i) => names[i].1 += by,
                Err(i) => self.insert(i, CompactString::new(name), by),
            },
            Names::Many(names) => match names.get_mut(name) {
                Some(n) => *n += by,
                None => {
                    names.insert(CompactString::new(name), by);
                }
            },
        }
    }

    /// [`Tally::add`] for a name already owned, which is moved in.
    fn add_owned(&mut self, name: CompactString, by: u64) {
        match &mut self.0 {
            Names::Few(names) => match names.binary_search_by(|(n, _)| n.cmp(&name)) {
                Ok(i) => names[i].1 += by,
                Err(i) => self.insert(i, name, by),
            },
            Names::Many(names) => *names.entry(name).or_insert(0) += by,
        }
    }

    /// Inserts a new name at `at` of the vector, or moves to a tree when it is full.
    fn insert(&mut self, at: usize, name: CompactString, by: u64) {
        if let Names::Few(names) = &mut self.0 {
            if names.len() < FEW_NAMES {
                names.insert(at, (name, by));
                return;
            }
            let mut tree: BTreeMap<CompactString, u64> =
                std::mem::take(names).into_iter().collect();
            tree.insert(name, by);
            self.0 = Names::Many(tree);
        }
    }

    /// Adds every count of `other`, moving its names.
    pub fn merge(&mut self, other: Tally) {
        if self.is_empty() {
            *self = other;
            return;
        }
        match other.0 {
            Names::Few(names) => names.into_iter().for_each(|(n, by)| self.add_owned(n, by)),
            Names::Many(names) => names.into_iter().for_each(|(n, by)| self.add_owned(n, by)),
        }
    }

    /// `name`'s count.
    pub fn get(&self, name: &str) -> Option<u64> {
        match &self.0 {
            Names::Few(names) => names
                .binary_search_by(|(n, _)| n.as_str().cmp(name))
                .ok()
                .map(|i| names[i].1),
            Names::Many(names) => names.get(name).copied(),
        }
    }

    /// Names and counts, by name.
    pub fn iter(&self) -> TallyIter<'_> {
        TallyIter(match &self.0 {
            Names::Few(names) => NamesIter::Few(names.iter()),
            Names::Many(names) => NamesIter::Many(names.iter()),
        })
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        match &self.0 {
            Names::Few(names) => names.len(),
            Names::Many(names) => names.len(),
        }
    }

    /// No names yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same counts as a map.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        self.iter().map(|(n, c)| (n.to_owned(), c)).collect()
    }
}

/// The names and counts of a [`Tally`], by name.
#[derive(Debug, Clone)]
pub struct TallyIter<'a>(NamesIter<'a>);

#[derive(Debug, Clone)]
enum NamesIter<'a> {
    Few(std::slice::Iter<'a, (CompactString, u64)>),
    Many(std::collections::btree_map::Iter<'a, CompactString, u64>),
}

impl<'a> Iterator for TallyIter<'a> {
    type Item = (&'a str, u64);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            NamesIter::Few(names) => names.next().map(|(n, c)| (n.as_str(), *c)),
            NamesIter::Many(names) => names.next().map(|(n, c)| (n.as_str(), *c)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            NamesIter::Few(names) => names.size_hint(),
            NamesIter::Many(names) => names.size_hint(),
        }
    }
}

impl ExactSizeIterator for TallyIter<'_> {}

/// Equal when the names and counts are, however they are held.
impl PartialEq for Tally {
    fn eq(&self, other: &Tally) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Tally {}

impl fmt::Debug for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq<BTreeMap<String, u64>> for Tally {
    fn eq(&self, other: &BTreeMap<String, u64>) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((n, c), (m, d))| n == m && c == *d)
    }
}

impl<S: AsRef<str>> FromIterator<(S, u64)> for Tally {
    fn from_iter<I: IntoIterator<Item = (S, u64)>>(iter: I) -> Self {
        let mut tally = Tally::new();
        for (name, by) in iter {
            tally.add(name.as_ref(), by);
        }
        tally
    }
}

/// Serialised as a JSON object, name → count, in name order (as a map would be).
impl Serialize for Tally {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, count) in self.iter() {
            map.serialize_entry(name, &count)?;
        }
        map.end()
    }
}

/// The smallest values seen of a kind (source IPs, VPC endpoints, `invokedBy`
/// services), at most `N`, sorted. Keeping the smallest rather than the
/// first makes the result independent of record order and exact under merging.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Smallest<const N: usize>(Vec<CompactString>);

impl<const N: usize> Smallest<N> {
    /// An empty set.
    pub const fn new() -> Self {
        Smallest(Vec::new())
    }

    /// Keeps `value` if it is among the `N` smallest.
    pub fn offer(&mut self, value: &str) {
        if let Err(i) = self.0.binary_search_by(|v| v.as_str().cmp(value)) {
            if i < N {
                self.0.truncate(N - 1);
                self.0.insert(i, CompactString::new(value));
            }
        }
    }

    /// [`Smallest::offer`] for a value already owned, which is moved in.
    fn offer_owned(&mut self, value: CompactString) {
        if let Err(i) = self.0.binary_search(&value) {
            if i < N {
                self.0.truncate(N - 1);
                self.0.insert(i, value);
            }
        }
    }

    /// Keeps the smallest of both sets.
    pub fn merge(&mut self, other: Smallest<N>) {
        if self.0.is_empty() {
            self.0 = other.0;
            return;
        }
        for value in other.0 {
            self.offer_owned(value);
        }
    }

    /// The values, smallest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(CompactString::as_str)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No values yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `value` is kept.
    pub fn contains(&self, value: &str) -> bool {
        self.0.binary_search_by(|v| v.as_str().cmp(value)).is_ok()
    }

    /// The values as a set.
    pub fn to_set(&self) -> BTreeSet<String> {
        self.0.iter().map(|v| v.to_string()).collect()
    }

    /// The values as a list, smallest first.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|v| v.to_string()).collect()
    }
}

impl<const N: usize> fmt::Debug for Smallest<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<BTreeSet<String>> for Smallest<N> {
    fn eq(&self, other: &BTreeSet<String>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl<const N: usize, S: AsRef<str>> FromIterator<S> for Smallest<N> {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut set = Smallest::new();
        for value in iter {
            set.offer(value.as_ref());
        }
        set
    }
}

/// Serialised as a JSON array, smallest first.
impl<const N: usize> Serialize for Smallest<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for value in self.iter() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_per_name_in_name_order() {
        let mut t = Tally::new();
        for name in ["Query", "GetItem", "Query", "BatchGetItem"] {
            t.add(name, 1);
        }
        t.add_owned("GetItem".into(), 5);
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [("BatchGetItem", 1), ("GetItem", 6), ("Query", 2)]
        );
        assert_eq!(t.get("Query"), Some(2));
        assert_eq!(t.get("PutItem"), None);
        assert_eq!(t, t.to_map());
        assert_eq!(
            serde_json::to_string(&t).unwrap_or_default(),
            serde_json::to_string(&t.to_map()).unwrap_or_default()
        );
    }

    #[test]
    fn merging_tallies_adds_counts() {
        let mut a: Tally = [("GetItem", 2), ("Query", 1)].into_iter().collect();
        let b: Tally = [("PutItem", 1), ("Query", 3)].into_iter().collect();
        a.merge(b);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [("GetItem", 2), ("PutItem", 1), ("Query", 4)]
        );
        let mut empty = Tally::new();
        empty.merge(a.clone());
        assert_eq!(empty, a);
    }

    #[test]
    fn a_tally_with_many_names_moves_to_a_tree_and_keeps_every_count() {
        let names: Vec<String> = (0..FEW_NAMES * 4)
            .map(|i| format!("op-{:03}", (i * 37) % (FEW_NAMES * 4)))
            .collect();
        let mut tally = Tally::new();
        let mut expected = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            tally.add(name, 1);
            tally.add_owned(name.as_str().into(), 1);
            *expected.entry(name.clone()).or_insert(0) += 2;
            assert_eq!(tally.len(), i + 1);
            assert_eq!(matches!(tally.0, Names::Many(_)), i + 1 > FEW_NAMES);
        }
        assert_eq!(tally, expected);
        assert_eq!(tally.iter().len(), names.len());
        assert_eq!(tally.get("op-005"), Some(2));
        // A tree and a vector with the same counts are equal, and merge either way.
        let few: Tally = [("op-001", 1), ("zz", 5)].into_iter().collect();
        let mut big = tally.clone();
        big.merge(few.clone());
        let mut small = few;
        small.merge(tally.clone());
        assert_eq!(big, small);
        assert_eq!(big.get("op-001"), Some(3));
        assert_eq!(big.get("zz"), Some(5));
        assert_eq!(
            serde_json::to_string(&big).unwrap_or_default(),
            serde_json::to_string(&big.to_map()).unwrap_or_default()
        );
    }

    #[test]
    fn smallest_keeps_the_n_smallest_values_whatever_the_order() {
        let values = ["e", "a", "d", "a", "c", "f", "b"];
        let mut forward = Smallest::<3>::new();
        values.iter().for_each(|v| forward.offer(v));
        let mut backward = Smallest::<3>::new();
        values
            .iter()
            .rev()
            .for_each(|v| backward.offer_owned((*v).into()));
        assert_eq!(forward.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(forward, backward);
        assert!(forward.contains("b") && !forward.contains("d"));
        assert_eq!(forward, forward.to_set());
    }

    #[test]
    fn merging_smallest_sets_equals_offering_everything_to_one() {
        let mut a: Smallest<3> = ["z", "m", "b"].into_iter().collect();
        let b: Smallest<3> = ["a", "m", "y"].into_iter().collect();
        let all: Smallest<3> = ["z", "m", "b", "a", "m", "y"].into_iter().collect();
        a.merge(b);
        assert_eq!(a, all);
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", "b", "m"]);
    }
}
