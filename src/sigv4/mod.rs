//! AWS Signature Version 4, sans-IO.
//!
//! Every input (time, credentials, request parts) is a parameter; nothing here reads a clock
//! or touches the network, so each step can be pinned to the official test vectors in
//! `sigv4-vectors/`. One module per SigV4 step:
//!
//! - [`encode`]: the AWS URI-encoding rules and path normalisation;
//! - [`canonical_request`]: method, path, query, headers and payload hash in canonical form;
//! - [`string_to_sign`]: the scope and the text that gets signed;
//! - [`signing_key`]: the derived key and its per-day cache;
//! - [`signer`]: the two front doors, [`Signer::sign`] (headers) and [`Signer::presign`] (query).

pub mod canonical_request;
pub mod credentials;
pub mod encode;
pub mod signer;
pub mod signing_key;
pub mod string_to_sign;

pub use canonical_request::{
    CanonicalRequest, ContentSha256Header, Mode, PathMode, PayloadHash, SessionTokenMode,
};
pub use credentials::Credentials;
pub use signer::{PresignError, Request, SignedHeaders, Signer};

/// `x-amz-content-sha256` of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The longest validity S3 accepts for a presigned URL: seven days.
pub const MAX_PRESIGN_EXPIRES: u32 = 604_800;

/// Lower-case hex SHA-256 of `data` (a payload hash, `x-amz-content-sha256`).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex32(&Sha256::digest(data).into())
}

/// Lower-case hex of 32 bytes.
pub(crate) fn hex32(bytes: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(bytes, &mut buf).expect("64 bytes hold 32 in hex");
    String::from_utf8(buf.to_vec()).expect("hex is ASCII")
}

/// `YYYYMMDD'T'HHMMSS'Z'` in UTC, the only timestamp form SigV4 uses.
pub fn amz_date(time: time::OffsetDateTime) -> String {
    let t = time.to_offset(time::UtcOffset::UTC);
    let mut out = String::with_capacity(16);
    fn push(out: &mut String, n: u32, width: u32) {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(p) % 10) as u8));
        }
    }
    push(&mut out, t.year() as u32, 4);
    push(&mut out, u8::from(t.month()).into(), 2);
    push(&mut out, t.day().into(), 2);
    out.push('T');
    push(&mut out, t.hour().into(), 2);
    push(&mut out, t.minute().into(), 2);
    push(&mut out, t.second().into(), 2);
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_is_utc_basic_format() {
        let t = time::macros::datetime!(2013-05-24 02:00:00 +02:00);
        assert_eq!(amz_date(t), "20130524T000000Z");
    }
}
