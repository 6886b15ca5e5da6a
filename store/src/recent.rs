//! A small in-memory map of things looked up recently (sessions, API keys), trusted for a
//! while so a busy client does not cost a database read per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values found in the last [`RecentCache::FRESH_FOR`], by key. Bounded: past
/// [`RecentCache::MAX_ENTRIES`] stale entries go, and if that is not enough, all of them.
pub struct RecentCache<V> {
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V> Default for RecentCache<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> RecentCache<V> {
    /// How long a value is trusted without looking again.
    pub const FRESH_FOR: Duration = Duration::from_secs(30);
    const MAX_ENTRIES: usize = 10_000;

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value stored under `key`, if it was found less than [`Self::FRESH_FOR`] ago.
    pub fn get(&self, key: &str) -> Option<V> {
        self.entries()
            .get(key)
            .filter(|(_, found)| found.elapsed() < Self::FRESH_FOR)
            .map(|(value, _)| value.clone())
    }

    /// Remembers `value` under `key` as found now.
    pub fn put(&self, key: String, value: V) {
        let mut entries = self.entries();
        if entries.len() >= Self::MAX_ENTRIES {
            entries.retain(|_, (_, found)| found.elapsed() < Self::FRESH_FOR);
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets what is stored under `key`.
    pub fn remove(&self, key: &str) {
        self.entries().remove(key);
    }

    /// Forgets every value `drop` says to.
    pub fn remove_where(&self, drop: impl Fn(&V) -> bool) {
        self.entries().retain(|_, (value, _)| !drop(value));
    }
}
