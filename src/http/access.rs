//! Access control, off by default so the drop-in stays drop-in: API keys
//! (`PARPARCHIK_API_KEYS`) and a per-client rate limit
//! (`PARPARCHIK_RATE_LIMIT_PER_SECOND`, `PARPARCHIK_RATE_LIMIT_BURST`). The key is
//! checked before the limit, and requests with and without a valid key have separate
//! budgets; the client address comes from [`super::client_addr`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use hyper::HeaderMap;

/// Equality whose time depends on the lengths only, not on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
pub(crate) fn authorized(headers: &HeaderMap, keys: &[String]) -> bool {
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

/// Which budget a request draws from. Requests that present a valid key never share a
/// bucket with those that do not, so unauthenticated traffic from an address (a
/// scanner, a NAT neighbour, a misconfigured client) cannot use up a valid client's
/// budget; failed attempts are still limited, in their own bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ClientKey {
    /// The address; IPv6 cut to its /64, the block one subscriber usually gets, so
    /// rotating through one's own addresses does not multiply the budget.
    addr: u128,
    v6: bool,
    authenticated: bool,
}

impl ClientKey {
    fn new(client: IpAddr, authenticated: bool) -> ClientKey {
        let (addr, v6) = match super::client_addr::canonical(client) {
            IpAddr::V4(a) => (u128::from(u32::from(a)), false),
            IpAddr::V6(a) => (u128::from(a) & !u128::from(u64::MAX), true),
        };
        ClientKey {
            addr,
            v6,
            authenticated,
        }
    }
}

#[derive(Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    at: Instant,
}

/// One shard of the client map: two generations. Lookups try the current one, then
/// the previous one (moving the entry over); when the current one is full it becomes
/// the previous one and the old previous one is dropped whole. Clients not seen for a
/// generation are forgotten (and come back with a full bucket, as a new client would),
/// every operation is O(1), and a shard never holds more than two generations.
struct Shard {
    current: HashMap<ClientKey, TokenBucket>,
    previous: HashMap<ClientKey, TokenBucket>,
}

/// Shards of the client map: requests from different clients rarely wait for the same
/// lock.
const SHARDS: usize = 64;

/// A token bucket per client, in a bounded map.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// Entries per generation per shard.
    generation: usize,
    shards: Box<[Mutex<Shard>]>,
    hasher: std::hash::RandomState,
}

/// Client entries kept at most (two generations in every shard).
pub(crate) const MAX_TRACKED_CLIENTS: usize = 100_000;

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::with_capacity(per_second, burst, MAX_TRACKED_CLIENTS)
    }

    /// A limiter that tracks at most about `capacity` clients.
    pub fn with_capacity(per_second: f64, burst: u32, capacity: usize) -> RateLimiter {
        let generation = (capacity / (2 * SHARDS)).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    current: HashMap::with_capacity(generation),
                    previous: HashMap::new(),
                })
            })
            .collect();
        RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            generation,
            shards,
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Takes one token from the bucket of `client` (authenticated or not); false when
    /// that bucket is empty.
    pub fn allow(&self, client: IpAddr, authenticated: bool, now: Instant) -> bool {
        use std::hash::BuildHasher;
        let key = ClientKey::new(client, authenticated);
        let slot = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        let mut shard = self.shards[slot]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Shard { current, previous } = &mut *shard;
        let bucket = match current.get_mut(&key) {
            Some(b) => b,
            None => {
                let b = previous.remove(&key).unwrap_or(TokenBucket {
                    tokens: self.burst,
                    at: now,
                });
                if current.len() >= self.generation {
                    // Dropping a map of plain values frees its memory without a scan.
                    *previous = std::mem::replace(current, HashMap::with_capacity(self.generation));
                }
                current.entry(key).or_insert(b)
            }
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Clients tracked now (for tests and bounds).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.current.len() + s.previous.len()
            })
            .sum()
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
        assert!(rl.allow(ip, true, t0) && rl.allow(ip, true, t0) && rl.allow(ip, true, t0));
        assert!(!rl.allow(ip, true, t0));
        assert!(rl.allow(other, true, t0), "limits are per client");
        assert!(rl.allow(ip, true, t0 + Duration::from_millis(500)));
        assert!(!rl.allow(ip, true, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn failed_authentication_has_its_own_budget() {
        let rl = RateLimiter::new(1.0, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.allow(ip, false, t0));
        }
        assert!(
            !rl.allow(ip, false, t0),
            "unauthenticated requests are limited"
        );
        assert!(
            rl.allow(ip, true, t0),
            "a valid key has its own full bucket"
        );
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let rl = RateLimiter::new(1.0, 1);
        let t0 = Instant::now();
        assert!(rl.allow("2001:db8:1:2::1".parse().unwrap(), true, t0));
        assert!(!rl.allow("2001:db8:1:2::ffff".parse().unwrap(), true, t0));
        assert!(rl.allow("2001:db8:1:3::1".parse().unwrap(), true, t0));
        // A mapped IPv4 address is that IPv4 client.
        assert!(rl.allow("192.0.2.1".parse().unwrap(), true, t0));
        assert!(!rl.allow("::ffff:192.0.2.1".parse().unwrap(), true, t0));
    }

    /// 130 000 distinct addresses: the map stays within its bound and the time per
    /// request does not grow with the number of addresses seen.
    #[test]
    fn many_addresses_cost_bounded_memory_and_time() {
        let rl = RateLimiter::new(1.0, 2);
        let t0 = Instant::now();
        let mut batch_times = Vec::new();
        for batch in 0..13u32 {
            let started = Instant::now();
            for i in 0..10_000u32 {
                let n = batch * 10_000 + i;
                let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
                assert!(rl.allow(ip, false, t0), "a new client has a full bucket");
            }
            batch_times.push(started.elapsed());
            assert!(rl.tracked() <= MAX_TRACKED_CLIENTS, "{}", rl.tracked());
        }
        let first = batch_times[..3].iter().max().copied().unwrap_or_default();
        let last = batch_times[10..].iter().max().copied().unwrap_or_default();
        println!("10 000 new clients: first batches {first:?}, last batches {last:?}");
        // Generous against noisy machines; an O(n) scan per request made this seconds.
        assert!(
            last < first * 5 + Duration::from_millis(50),
            "time per request grew: {batch_times:?}"
        );
        // A client seen recently is still remembered after the flood.
        let recent = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 129_999));
        assert!(rl.allow(recent, false, t0));
        assert!(!rl.allow(recent, false, t0), "its bucket was kept");
    }
}
