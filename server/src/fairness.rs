//! A share of an engine shard's time per user.
//!
//! Each document's messages are handled on its engine shard's thread. The limits on
//! messages bound what one message costs, but some messages are legitimately
//! expensive (the first sync of a large document sends the whole document; a peer may
//! ask for that again and again with the sync-reset flag), so a token holder sending
//! many of them could still keep a shard busy for every other document on it.
//! [`EngineShare`] charges the time the shard spends on each user's frames to that
//! user's bucket, refilled at a fixed share of one second per second; a user whose
//! bucket runs dry has the offending connection closed with an `error`. One user's
//! connections share one bucket, so opening more connections buys no more time. Each
//! shard keeps its own buckets: its time is what the user takes from the documents on
//! it, and a shared account would put a lock on every frame of every shard.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Engine time per user: `rate` of every second, with bursts up to `burst`.
#[derive(Debug)]
pub struct EngineShare {
    rate: f64,
    burst: Duration,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    left: Duration,
    at: Instant,
}

impl EngineShare {
    /// `rate` is the fraction of the engine's time a user may use sustained (0.25 =
    /// a quarter of every second); `burst` how much it may use at once (a large first
    /// sync).
    pub fn new(rate: f64, burst: Duration) -> Self {
        EngineShare {
            rate: rate.clamp(0.0, 1.0),
            burst,
            buckets: HashMap::new(),
        }
    }

    /// Charges `spent` to `user` at `now`; `false` when the user has used more than
    /// its share.
    pub fn charge(&mut self, user: &str, spent: Duration, now: Instant) -> bool {
        // Called for every frame: look up before allocating the key.
        if !self.buckets.contains_key(user) {
            self.buckets.insert(
                user.to_string(),
                Bucket {
                    left: self.burst,
                    at: now,
                },
            );
        }
        let b = self.buckets.get_mut(user).expect("inserted above");
        let earned = now.saturating_duration_since(b.at).mul_f64(self.rate);
        b.left = (b.left + earned).min(self.burst);
        b.at = now;
        match b.left.checked_sub(spent) {
            Some(left) => {
                b.left = left;
                true
            }
            None => {
                b.left = Duration::ZERO;
                false
            }
        }
    }

    /// Forgets users whose buckets are full again, so the map does not grow with every
    /// user ever seen.
    pub fn prune(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .retain(|_, b| b.left + now.saturating_duration_since(b.at).mul_f64(rate) < burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_may_burst_then_gets_its_share_and_no_more() {
        let start = Instant::now();
        let mut share = EngineShare::new(0.25, Duration::from_secs(2));
        assert!(share.charge("a", Duration::from_millis(1900), start));
        assert!(!share.charge("a", Duration::from_millis(200), start));
        // Another user is unaffected.
        assert!(share.charge("b", Duration::from_millis(1500), start));
        // One second later, a quarter of a second has been earned back.
        let later = start + Duration::from_secs(1);
        assert!(share.charge("a", Duration::from_millis(240), later));
        assert!(!share.charge("a", Duration::from_millis(20), later));
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let start = Instant::now();
        let mut share = EngineShare::new(0.5, Duration::from_secs(1));
        share.charge("a", Duration::from_millis(500), start);
        share.charge("b", Duration::from_millis(10), start);
        // After 0.1 s, "b" has earned back its 10 ms and is forgotten; "a" is not.
        share.prune(start + Duration::from_millis(100));
        assert_eq!(share.buckets.keys().collect::<Vec<_>>(), vec!["a"]);
        share.prune(start + Duration::from_secs(5));
        assert!(share.buckets.is_empty());
    }
}
