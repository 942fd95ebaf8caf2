//! Leases: what a pull, load, import or commit has written, or is about to look for,
//! and has not yet recorded in an image. Garbage collection (every `rmi` and prune)
//! leaves leased blobs and snapshots alone, so it cannot delete the layers of an
//! image still arriving.
//!
//! The order that makes it safe: an ingest leases a digest *before* it checks whether
//! the store holds it, and collection keeps the lease table locked while it deletes.
//! So either collection ran first (the ingest then finds the blob gone and fetches it)
//! or the digest was leased before collection looked (and it is kept).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::content::Digest;

/// Every lease in force.
#[derive(Debug, Default)]
pub struct Leases {
    next: AtomicU64,
    held: Mutex<HashMap<u64, HashSet<Digest>>>,
}

/// One ingest's lease; released when dropped (after its image is recorded, or when the
/// ingest fails and what it wrote becomes garbage).
#[derive(Debug)]
pub struct Lease {
    id: u64,
    leases: Arc<Leases>,
}

impl Leases {
    pub fn take(self: &Arc<Self>) -> Lease {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.table().insert(id, HashSet::new());
        Lease { id, leases: self.clone() }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<u64, HashSet<Digest>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds the table for a collection: nothing can be leased meanwhile. Returns the
    /// guard and every leased digest (blobs and snapshot chain IDs alike).
    pub fn for_collection(&self) -> (MutexGuard<'_, HashMap<u64, HashSet<Digest>>>, HashSet<Digest>) {
        let table = self.table();
        let leased = table.values().flatten().cloned().collect();
        (table, leased)
    }
}

impl Lease {
    /// Leases `digest` (a blob, or a snapshot's chain ID). Call before looking it up.
    pub fn protect(&self, digest: &Digest) {
        if let Some(set) = self.leases.table().get_mut(&self.id) {
            set.insert(digest.clone());
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.leases.table().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leased_digests_are_listed_until_the_lease_ends() {
        let leases = Arc::new(Leases::default());
        let a = Digest::of(b"a");
        let lease = leases.take();
        lease.protect(&a);
        let other = leases.take();
        other.protect(&Digest::of(b"b"));
        assert!(leases.for_collection().1.contains(&a));
        drop(lease);
        let (table, leased) = leases.for_collection();
        drop(table);
        assert!(!leased.contains(&a) && leased.contains(&Digest::of(b"b")));
    }
}
