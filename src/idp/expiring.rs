//! [`ExpiringMap`]: the one bounded-table shape of Fabrikam ID's server-side records
//! (sessions, authorization codes, remembered browsers, password throttles): a map whose
//! entries each carry an expiry, with the expiry order kept beside it, and optionally an owner
//! (a user) with a cap per owner.
//!
//! Every operation costs O(log n): expired entries are found at the front of the order, never
//! by scanning the table under its lock (the attack run of issue 11 minted 3,500 codes a
//! second, each scanning the whole code table). What happens when the table is full — evict
//! the entry that expires soonest, or refuse — is the caller's decision; see
//! [`ExpiringMap::insert`].

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;

/// The key a secret value (a code, a cookie) is stored under: its SHA-256, so a table never
/// holds the secret itself and every lookup costs the same whatever length was posted.
pub fn secret_key(value: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes()).into()
}

/// A map of `K` to `V` in which each entry expires at a time (Unix seconds, on whichever
/// clock the caller uses consistently), optionally owned by a user.
#[derive(Debug)]
pub struct ExpiringMap<K, V> {
    entries: HashMap<K, Slot<V>>,
    /// (expires_at, seq) → key, soonest first. Exactly the entries of `entries`.
    order: BTreeMap<(i64, u64), K>,
    /// Owner → its entries' (expires_at, seq), soonest first.
    owners: HashMap<Arc<str>, BTreeSet<(i64, u64)>>,
    next_seq: u64,
    cap: usize,
    per_owner_cap: usize,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    expires_at: i64,
    seq: u64,
    owner: Option<Arc<str>>,
}

/// What [`ExpiringMap::insert`] did to make room.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted<K, V> {
    /// There was room.
    Fitted,
    /// The owner had [`ExpiringMap::per_owner_cap`] entries: its entry expiring soonest went.
    EvictedOwners(K, V),
    /// The table was full of live entries: the one expiring soonest went.
    EvictedSoonest(K, V),
}

impl<K: Hash + Eq + Clone, V> ExpiringMap<K, V> {
    /// A table of at most `cap` entries and `per_owner_cap` per owner (both at least 1).
    pub fn new(cap: usize, per_owner_cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            owners: HashMap::new(),
            next_seq: 0,
            cap: cap.max(1),
            per_owner_cap: per_owner_cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn per_owner_cap(&self) -> usize {
        self.per_owner_cap
    }

    /// Whether the table holds `cap` entries (call [`Self::purge`] first to count live ones).
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.cap
    }

    /// How many entries `owner` has.
    pub fn owned_by(&self, owner: &str) -> usize {
        self.owners.get(owner).map_or(0, BTreeSet::len)
    }

    /// When the entry expiring soonest expires.
    pub fn soonest_expiry(&self) -> Option<i64> {
        self.order.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns every entry expired at `now` (`expires_at <= now`), soonest first.
    pub fn purge(&mut self, now: i64) -> Vec<(K, V)> {
        let mut gone = Vec::new();
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            if let Some(slot) = self.take_slot(&key) {
                gone.push((key, slot.value));
            }
        }
        gone
    }

    /// The live entry for `key` (an expired one is removed and counts as absent).
    pub fn get<Q>(&mut self, key: &Q, now: i64) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_mut(key, now).map(|v| &*v)
    }

    /// The live entry for `key`, to change in place.
    pub fn get_mut<Q>(&mut self, key: &Q, now: i64) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.entries.get(key)?.expires_at <= now {
            self.remove(key);
            return None;
        }
        self.entries.get_mut(key).map(|slot| &mut slot.value)
    }

    /// When the entry for `key` expires, if there is one (live or not).
    pub fn expiry<Q>(&self, key: &Q) -> Option<i64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|slot| slot.expires_at)
    }

    /// Inserts (or replaces) `key`, owned by `owner` if given, expiring at `expires_at`.
    ///
    /// Expired entries are purged first. Then, if the owner already has
    /// [`Self::per_owner_cap`] entries, its entry expiring soonest is evicted; else if the table
    /// is full, the entry expiring soonest is. Callers that must never evict a live entry check
    /// [`Self::is_full`] and [`Self::owned_by`] after [`Self::purge`] and refuse instead.
    pub fn insert(
        &mut self,
        key: K,
        value: V,
        owner: Option<&str>,
        expires_at: i64,
        now: i64,
    ) -> Inserted<K, V> {
        self.remove(&key);
        self.purge(now);
        let mut made_room = Inserted::Fitted;
        if let Some(owner) = owner
            && self.owned_by(owner) >= self.per_owner_cap
            && let Some(&soonest) = self.owners.get(owner).and_then(|s| s.first())
            && let Some(evicted) = self.order.remove(&soonest)
            && let Some(slot) = self.take_slot(&evicted)
        {
            made_room = Inserted::EvictedOwners(evicted, slot.value);
        } else if self.is_full()
            && let Some((_, evicted)) = self.order.pop_first()
            && let Some(slot) = self.take_slot(&evicted)
        {
            made_room = Inserted::EvictedSoonest(evicted, slot.value);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let owner: Option<Arc<str>> = owner.map(|o| match self.owners.get_key_value(o) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::from(o),
        });
        if let Some(owner) = &owner {
            self.owners
                .entry(Arc::clone(owner))
                .or_default()
                .insert((expires_at, seq));
        }
        self.order.insert((expires_at, seq), key.clone());
        self.entries.insert(
            key,
            Slot {
                value,
                expires_at,
                seq,
                owner,
            },
        );
        made_room
    }

    /// Moves the expiry of `key`'s entry; `false` if there is none.
    pub fn set_expiry<Q>(&mut self, key: &Q, expires_at: i64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(slot) = self.entries.get_mut(key) else {
            return false;
        };
        if slot.expires_at == expires_at {
            return true;
        }
        let old = (slot.expires_at, slot.seq);
        let new = (expires_at, slot.seq);
        slot.expires_at = expires_at;
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(new, k);
        }
        if let Some(set) = slot.owner.as_ref().and_then(|o| self.owners.get_mut(o)) {
            set.remove(&old);
            set.insert(new);
        }
        true
    }

    /// Removes `key`'s entry, live or expired.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.entries.get(key)?;
        let at = (slot.expires_at, slot.seq);
        let key = self.order.remove(&at)?;
        self.take_slot(&key).map(|slot| slot.value)
    }

    /// Removes every entry of `owner`, live or expired.
    pub fn remove_owned(&mut self, owner: &str) -> Vec<(K, V)> {
        let Some(set) = self.owners.get(owner) else {
            return Vec::new();
        };
        let keys: Vec<K> = set.iter().filter_map(|at| self.order.get(at).cloned()).collect();
        keys.into_iter()
            .filter_map(|k| self.remove(&k).map(|v| (k, v)))
            .collect()
    }

    /// The live entries, soonest to expire first, with their expiry.
    pub fn iter_live(&self, now: i64) -> impl Iterator<Item = (&K, &V, i64)> {
        self.order
            .iter()
            .filter(move |((at, _), _)| *at > now)
            .filter_map(|(_, k)| self.entries.get_key_value(k))
            .map(|(k, slot)| (k, &slot.value, slot.expires_at))
    }

    /// Takes the slot out of `entries` and the owner index (the caller has removed its `order`
    /// pair already).
    fn take_slot(&mut self, key: &K) -> Option<Slot<V>> {
        let slot = self.entries.remove(key)?;
        if let Some(owner) = &slot.owner
            && let Some(set) = self.owners.get_mut(owner)
        {
            set.remove(&(slot.expires_at, slot.seq));
            if set.is_empty() {
                self.owners.remove(owner);
            }
        }
        Some(slot)
    }

    #[cfg(test)]
    fn consistent(&self) -> bool {
        let owned: usize = self.owners.values().map(BTreeSet::len).sum();
        self.order.len() == self.entries.len()
            && self
                .order
                .iter()
                .all(|(at, k)| self.entries.get(k).is_some_and(|s| (s.expires_at, s.seq) == *at))
            && owned == self.entries.values().filter(|s| s.owner.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_in_order_and_the_expired_ones_are_absent() {
        let mut map = ExpiringMap::new(10, 10);
        map.insert("a", 1, None, 100, 0);
        map.insert("b", 2, None, 50, 0);
        map.insert("c", 3, None, 200, 0);
        assert_eq!(map.soonest_expiry(), Some(50));
        assert_eq!(map.get("b", 50), None, "expired at its expiry");
        assert_eq!(map.len(), 2, "and removed");
        assert_eq!(map.purge(150), vec![("a", 1)]);
        assert_eq!(map.get("c", 150), Some(&3));
        assert!(map.set_expiry("c", 120));
        assert_eq!(map.purge(120), vec![("c", 3)]);
        assert!(map.is_empty() && map.consistent());
    }

    #[test]
    fn a_full_table_evicts_the_entry_expiring_soonest_and_an_owner_its_own() {
        let mut map = ExpiringMap::new(3, 2);
        assert_eq!(map.insert("a1", (), Some("alice"), 10, 0), Inserted::Fitted);
        assert_eq!(map.insert("a2", (), Some("alice"), 20, 0), Inserted::Fitted);
        // alice's third entry pushes out her own soonest, not someone else's.
        assert_eq!(map.insert("b1", (), Some("bob"), 5, 0), Inserted::Fitted);
        assert_eq!(
            map.insert("a3", (), Some("alice"), 30, 0),
            Inserted::EvictedOwners("a1", ())
        );
        assert_eq!(map.owned_by("alice"), 2);
        // The table is full: a new owner's entry pushes out the soonest overall (bob's).
        assert_eq!(
            map.insert("c1", (), Some("carol"), 40, 0),
            Inserted::EvictedSoonest("b1", ())
        );
        assert_eq!(map.owned_by("bob"), 0);
        // Expired entries make room before anything live is evicted.
        assert_eq!(map.insert("d1", (), None, 50, 25), Inserted::Fitted);
        assert_eq!(map.get("a2", 25), None);
        assert_eq!(map.remove_owned("alice"), vec![("a3", ())]);
        assert!(map.consistent());
    }

    #[test]
    fn replacing_moving_and_removing_keep_the_indexes_in_step() {
        let mut map = ExpiringMap::new(100, 100);
        for i in 0..50 {
            map.insert(
                i,
                i,
                Some(if i % 2 == 0 { "even" } else { "odd" }),
                i64::from(i) + 1,
                0,
            );
        }
        map.insert(7, 70, Some("even"), 1_000, 0);
        assert_eq!(map.owned_by("even"), 26);
        assert!(map.set_expiry(&8, 2_000));
        assert_eq!(map.remove(&9), Some(9));
        assert_eq!(map.purge(30).len(), 27);
        let live: Vec<i64> = map.iter_live(30).map(|(_, _, at)| at).collect();
        assert!(live.windows(2).all(|w| w[0] <= w[1]), "{live:?}");
        assert_eq!(map.get(&8, 30), Some(&8));
        assert!(map.consistent());
    }
}
