//! Per-party rate limits: a token bucket for each calling party. An exhausted bucket answers
//! 429 with Retry-After, so that a misbehaving client slows down instead of starving the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tokens added per second.
    pub rate: f64,
    /// Bucket size: the burst a party may send at once.
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `party` at `now`; when none is left, says how long until one is.
    pub fn take(&self, party: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let Limits { rate, burst } = self.limits;
        let bucket = buckets.entry(party.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = if rate > 0.0 {
                (1.0 - bucket.tokens) / rate
            } else {
                3600.0
            };
            Err(Duration::from_secs_f64(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(Limits {
            rate: 2.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("prato", t0).is_ok());
        }
        let wait = limiter.take("prato", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(limiter.take("firenze", t0).is_ok(), "buckets are per party");
        assert!(
            limiter
                .take("prato", t0 + Duration::from_millis(500))
                .is_ok()
        );
    }
}
