//! Access control, off by default so the drop-in stays drop-in: API keys
//! (`PARPARCHIK_API_KEYS`) and a per-client rate limit
//! (`PARPARCHIK_RATE_LIMIT_PER_SECOND`, `PARPARCHIK_RATE_LIMIT_BURST`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use hyper::HeaderMap;

/// Equality whose time depends on the lengths only, not on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The key a request presents: `X-API-Key: <key>` or `Authorization: Bearer <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get("x-api-key") {
        return Some(v.as_bytes());
    }
    let auth = headers.get(hyper::header::AUTHORIZATION)?.as_bytes();
    let scheme = auth.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| auth[7..].trim_ascii())
}

/// Whether the request carries one of `keys` (always true when no key is configured).
pub fn authorized(headers: &HeaderMap, keys: &[String]) -> bool {
    if keys.is_empty() {
        return true;
    }
    let Some(presented) = presented_key(headers) else {
        return false;
    };
    // Check every key, so the time does not tell which one (if any) matched.
    keys.iter().fold(false, |ok, k| {
        constant_time_eq(presented, k.as_bytes()) | ok
    })
}

/// A token bucket per client address.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    clients: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Client entries kept before idle ones are swept, so a scan from many addresses cannot
/// grow the map without bound.
const MAX_TRACKED_CLIENTS: usize = 100_000;

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`; false when its bucket is empty.
    pub fn allow(&self, client: IpAddr, now: Instant) -> bool {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_TRACKED_CLIENTS && !clients.contains_key(&client) {
            let (rate, burst) = (self.per_second, self.burst);
            // A client whose bucket has refilled is indistinguishable from a new one.
            clients.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = clients.entry(client).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn keys_by_header_or_bearer() {
        let keys = vec!["k1".to_owned(), "secret-2".to_owned()];
        assert!(authorized(&headers(&[]), &[]));
        assert!(!authorized(&headers(&[]), &keys));
        assert!(authorized(&headers(&[("x-api-key", "secret-2")]), &keys));
        assert!(authorized(
            &headers(&[("authorization", "Bearer k1")]),
            &keys
        ));
        assert!(authorized(
            &headers(&[("authorization", "bearer  k1 ")]),
            &keys
        ));
        assert!(!authorized(
            &headers(&[("authorization", "Basic k1")]),
            &keys
        ));
        assert!(!authorized(&headers(&[("x-api-key", "k")]), &keys));
        assert!(!authorized(&headers(&[("x-api-key", "k1x")]), &keys));
    }

    #[test]
    fn token_bucket_refills() {
        let rl = RateLimiter::new(2.0, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        assert!(rl.allow(ip, t0) && rl.allow(ip, t0) && rl.allow(ip, t0));
        assert!(!rl.allow(ip, t0));
        assert!(rl.allow(other, t0), "limits are per client");
        assert!(rl.allow(ip, t0 + Duration::from_millis(500)));
        assert!(!rl.allow(ip, t0 + Duration::from_millis(500)));
    }
}
