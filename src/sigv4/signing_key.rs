//! Steps 3 and 4: the derived signing key, and the signature.

use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A derived key: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Derives the signing key for one day (`YYYYMMDD`), region and service.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&k_secret, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    SigningKey(hmac(&k_service, b"aws4_request"))
}

/// The hex signature of a string to sign.
pub fn signature(key: &SigningKey, string_to_sign: &str) -> String {
    super::hex32(&hmac(&key.0, string_to_sign.as_bytes()))
}

/// The key of the current day, so a signature costs one HMAC instead of five.
/// A signer has one region and service, so the day is the only part of the cache key
/// that changes.
#[derive(Default)]
pub struct SigningKeyCache {
    current: Mutex<Option<(String, SigningKey, HmacSha256)>>,
}

impl SigningKeyCache {
    /// The signing key for `date` (`YYYYMMDD`): the cached one when the date matches, else
    /// derived and cached (`secret`, `region` and `service` are taken to be the same on
    /// every call: one cache per signer).
    pub fn get(&self, secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
        // A poisoned lock only means another thread panicked mid-update of a plain value;
        // the value is still a valid key or None.
        let mut slot = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached_date, key, _)) = slot.as_ref()
            && cached_date == date
        {
            return *key;
        }
        let key = derive_signing_key(secret, date, region, service);
        let mac = HmacSha256::new_from_slice(&key.0).expect("any key length");
        *slot = Some((date.to_owned(), key, mac));
        key
    }

    /// The signature of `sts` with the day's key, from the keyed HMAC state kept in the cache.
    pub fn sign(&self, secret: &str, date: &str, region: &str, service: &str, sts: &str) -> String {
        let mut mac = {
            let mut slot = self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.as_ref() {
                Some((d, _, mac)) if d == date => mac.clone(),
                _ => {
                    let key = derive_signing_key(secret, date, region, service);
                    let mac = HmacSha256::new_from_slice(&key.0).expect("any key length");
                    *slot = Some((date.to_owned(), key, mac.clone()));
                    mac
                }
            }
        };
        mac.update(sts.as_bytes());
        super::hex32(&mac.finalize().into_bytes().into())
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeyCache(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the AWS General Reference ("Examples of how to derive a signing key").
    #[test]
    fn derives_the_documented_key() {
        let key = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key.0),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn cache_rederives_on_a_new_day() {
        let cache = SigningKeyCache::default();
        let a = cache.get("s", "20200101", "r", "s3");
        assert_eq!(a, cache.get("s", "20200101", "r", "s3"));
        assert_ne!(a, cache.get("s", "20200102", "r", "s3"));
    }
}
