//! Read connections kept between statements. sqlx returns a pooled connection through a spawned task
//! that pings it first; on SQLite that ping is a round trip to the connection's worker thread, as costly
//! as the read itself. A [`Lease`] whose statement completed goes back to a small stash instead and the
//! next read takes it from there, so a read costs one round trip. A lease dropped mid-statement (its
//! caller cancelled) or whose statement failed on the connection goes back through sqlx, which tests it.
//!
//! Invariants: the stash holds at most its capacity (half the SQLite pool), so the pool always keeps
//! connections for the audit writer and other callers; [`Spare::drain`] hands every stashed connection
//! back to the pool (before it closes).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};

use super::StoreError;

/// Idle connections kept for the next caller: at most `capacity`, and nothing once drained. Shared by
/// the read stash below and the direct SQLite path (`super::direct`).
#[derive(Debug)]
pub(crate) struct Stash<T> {
    items: Mutex<Vec<T>>,
    capacity: usize,
    /// Set by [`Stash::drain`]: the store is closing, nothing is kept any more.
    closed: AtomicBool,
}

impl<T> Stash<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn take(&self) -> Option<T> {
        self.items.lock().ok().and_then(|mut items| items.pop())
    }

    /// Keeps `item` if there is room; else it is dropped.
    pub(crate) fn keep(&self, item: T) {
        if let Ok(mut items) = self.items.lock() {
            // Checked under the lock `drain` takes: nothing is kept after the stash was drained.
            if !self.closed.load(Ordering::Acquire) && items.len() < self.capacity {
                items.push(item);
            }
        }
    }

    /// Drops everything kept, and keeps nothing from now on.
    pub(crate) fn drain(&self) {
        let drained = match self.items.lock() {
            Ok(mut items) => {
                self.closed.store(true, Ordering::Release);
                std::mem::take(&mut *items)
            }
            Err(_) => Vec::new(),
        };
        drop(drained);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.lock().map_or(0, |items| items.len())
    }
}

/// Idle read connections, outside the pool's own idle queue.
#[derive(Debug)]
pub(crate) struct Spare {
    connections: Stash<PoolConnection<Any>>,
    /// Callers waiting in the pool's own (first come, first served) queue. While any wait, a finished
    /// read's connection goes back to the pool for them instead of to the stash, where the next newcomer
    /// would take it ahead of them (under overload they would wait until their acquire timeout).
    waiting: AtomicUsize,
}

impl Spare {
    /// A stash of up to `capacity` connections (0 turns it off).
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            connections: Stash::new(capacity),
            waiting: AtomicUsize::new(0),
        })
    }

    /// A connection for one read: a stashed one, else one from the pool.
    pub(crate) async fn lease(self: &Arc<Self>, pool: &AnyPool) -> Result<Lease, StoreError> {
        let connection = match self.connections.take() {
            Some(connection) => connection,
            None => {
                let _waiting = Waiting::count(&self.waiting);
                pool.acquire().await?
            }
        };
        Ok(Lease {
            connection,
            spare: Arc::clone(self),
        })
    }

    /// Hands every stashed connection back to the pool.
    pub(crate) fn drain(&self) {
        self.connections.drain();
    }

    /// Stashes `connection` if there is room and nobody waits for the pool (else it goes back there).
    fn keep(&self, connection: PoolConnection<Any>) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            self.connections.keep(connection);
        }
    }
}

/// Counts one caller waiting for the pool while it lives (a cancelled wait is uncounted too).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One read's connection. Dropped, it goes back to the pool (tested there); [`Lease::settle`] keeps it
/// in the stash when its statement completed.
pub(crate) struct Lease {
    connection: PoolConnection<Any>,
    spare: Arc<Spare>,
}

impl Lease {
    /// Ends the lease with the read's result: a connection that answered (a row, or no such row) is
    /// kept for the next read; one whose statement failed goes back to the pool to be tested.
    pub(crate) fn settle<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let answered = matches!(
            result,
            Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Invalid { .. })
        );
        if answered {
            self.spare.keep(self.connection);
        }
        result
    }
}

impl Deref for Lease {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.connection
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.connection
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use crate::store::{Store, StoreError, StoreOptions};

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("lease.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn stashed(store: &Store) -> usize {
        store.spare.connections.len()
    }

    #[tokio::test]
    async fn an_answered_read_keeps_its_connection_and_the_stash_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        // A read that answered (a row, or no such row) keeps its connection.
        let lease = store.lease().await.unwrap();
        let answer: Result<(), StoreError> = Err(StoreError::NotFound { what: "patient" });
        assert!(lease.settle(answer).is_err());
        assert_eq!(stashed(&store), 1);
        // Many reads at once take several connections; at most half the pool waits in the stash.
        let mut leases = Vec::new();
        for _ in 0..8 {
            leases.push(store.lease().await.unwrap());
        }
        for lease in leases {
            lease.settle(Ok(())).unwrap();
        }
        assert!(stashed(&store) >= 1);
        assert!(stashed(&store) <= store.spare.connections.capacity);
        assert_eq!(store.spare.connections.capacity, 4);
        // Closing hands the stash back to the pool, which then closes without waiting for it.
        tokio::time::timeout(Duration::from_secs(5), store.close())
            .await
            .expect("close waited for stashed connections")
            .unwrap();
        assert_eq!(stashed(&store), 0);
    }

    #[tokio::test]
    async fn a_cancelled_read_returns_its_connection_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let lease = store.lease().await.unwrap();
        drop(lease);
        assert_eq!(stashed(&store), 0);
        assert!(store.pool().size() >= 1);
    }
}
