//! Burst coalescing for webhook triggers (pure; the caller passes the time).
//!
//! Leading and trailing edge per key: the first offer fires at once and opens a window; offers
//! inside the window are merged into **one** trailing trigger, due when the window closes, so a
//! push that lands while the first reconcile is already fetching is not lost (a leading-only
//! debouncer would drop it until the next interval). Flux has no coalescing: every call patches.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What to do with one offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Trigger now.
    Fire,
    /// Merged: a trailing trigger is due at this instant (call [`Debouncer::take_due`] then).
    Deferred(Instant),
    /// Merged into a trailing trigger that was already scheduled.
    Merged,
}

#[derive(Debug)]
struct Slot {
    window_end: Instant,
    trailing: bool,
}

/// Per-key leading+trailing debouncer.
#[derive(Debug)]
pub struct Debouncer<K> {
    window: Duration,
    slots: HashMap<K, Slot>,
}

impl<K: Eq + Hash + Clone> Debouncer<K> {
    /// A debouncer with this window.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            slots: HashMap::new(),
        }
    }

    /// Offers a trigger for `key` at `now`.
    pub fn offer(&mut self, key: K, now: Instant) -> Offer {
        match self.slots.get_mut(&key) {
            Some(slot) if now < slot.window_end => {
                if slot.trailing {
                    Offer::Merged
                } else {
                    slot.trailing = true;
                    Offer::Deferred(slot.window_end)
                }
            }
            _ => {
                self.slots.insert(
                    key,
                    Slot {
                        window_end: now + self.window,
                        trailing: false,
                    },
                );
                Offer::Fire
            }
        }
    }

    /// Keys whose trailing trigger is due at `now`; each opens a new window (the trailing
    /// trigger counts as a fire). Expired idle slots are dropped.
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        let window = self.window;
        self.slots.retain(|key, slot| {
            if now < slot.window_end {
                return true;
            }
            if slot.trailing {
                due.push(key.clone());
                slot.trailing = false;
                slot.window_end = now + window;
                true
            } else {
                false
            }
        });
        due
    }

    /// Number of keys tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(2);

    #[test]
    fn debouncer_first_offer_fires() {
        let mut d = Debouncer::new(W);
        assert_eq!(d.offer("a", Instant::now()), Offer::Fire);
    }

    #[test]
    fn debouncer_burst_within_window_merges_into_one_trailing() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(W);
        assert_eq!(d.offer("a", t0), Offer::Fire);
        assert_eq!(
            d.offer("a", t0 + Duration::from_millis(100)),
            Offer::Deferred(t0 + W)
        );
        assert_eq!(d.offer("a", t0 + Duration::from_millis(200)), Offer::Merged);
        assert_eq!(d.offer("a", t0 + Duration::from_millis(300)), Offer::Merged);
        assert_eq!(
            d.take_due(t0 + Duration::from_millis(1999)),
            Vec::<&str>::new()
        );
        assert_eq!(d.take_due(t0 + W), vec!["a"]);
        // Nothing more is due once the trailing trigger went out.
        assert_eq!(d.take_due(t0 + W * 3), Vec::<&str>::new());
        assert!(d.is_empty());
    }

    #[test]
    fn debouncer_other_key_fires_independently() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(W);
        assert_eq!(d.offer("a", t0), Offer::Fire);
        assert_eq!(d.offer("b", t0), Offer::Fire);
    }

    #[test]
    fn debouncer_offer_after_window_fires_again() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(W);
        assert_eq!(d.offer("a", t0), Offer::Fire);
        assert_eq!(d.offer("a", t0 + W), Offer::Fire);
    }

    #[test]
    fn debouncer_offer_after_trailing_fire_is_merged_into_new_window() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(W);
        d.offer("a", t0);
        d.offer("a", t0 + Duration::from_millis(10));
        assert_eq!(d.take_due(t0 + W), vec!["a"]);
        // The trailing trigger opened a new window.
        assert_eq!(
            d.offer("a", t0 + W + Duration::from_millis(1)),
            Offer::Deferred(t0 + W * 2)
        );
    }
}
