//! Property tests of the SigV4 encoders (`sigv4::props::*`):
//!
//! - the canonical S3 path of any UTF-8 key decodes back to that key;
//! - the query encoder never emits `+` nor a lower-case escape, and decodes back to the pairs;
//! - every canonical path and query is made only of unreserved bytes, its separators, and
//!   `%XX` escapes with upper-case hex digits.
//!
//! The decoder used to check them is the test loader's (`tests/it/support/sigv4.rs`), written
//! independently of `src/sigv4/encode.rs`.

mod sigv4 {
    mod props {
        use parparchik::sigv4::canonical_request::{canonical_path, canonical_query};
        use parparchik::sigv4::encode::{encode_component, encode_path};
        use parparchik::sigv4::{Credentials, Mode, PathMode, PayloadHash, Request, Signer};
        use proptest::prelude::*;
        use time::macros::datetime;

        use crate::support::sigv4::{decode_query, percent_decode};

        fn is_unreserved(b: u8) -> bool {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
        }

        /// `Err(reason)` unless `s` is only unreserved bytes, bytes of `separators`, and
        /// `%XX` escapes with upper-case hex digits.
        fn check_encoded(s: &str, separators: &[u8]) -> Result<(), String> {
            let b = s.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'+' => return Err(format!("`+` at {i} in {s:?}")),
                    b'%' => {
                        let hex = b.get(i + 1..i + 3).unwrap_or_default();
                        if hex.len() != 2
                            || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'))
                        {
                            return Err(format!("escape at {i} is not %XX upper-case in {s:?}"));
                        }
                        i += 3;
                        continue;
                    }
                    c if is_unreserved(c) || separators.contains(&c) => {}
                    c => return Err(format!("raw byte {c:#04x} at {i} in {s:?}")),
                }
                i += 1;
            }
            Ok(())
        }

        /// Arbitrary UTF-8, plus strings dense in the characters encoders get wrong:
        /// space, `+`, `%`, `/`, `=`, `&`, `~`, lower-case hex digits, and non-ASCII.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![any::<String>(), "[ +%/=&~?#a-f0-9A-Z.\\-_é€ሴ😀]{0,24}",]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// An object key, put in a path and canonicalised in S3 mode, decodes back to
            /// itself: nothing is lost, added or normalised away (`a/../b` stays).
            #[test]
            fn s3_canonical_path_decodes_back_to_the_key(key in text()) {
                let path = format!("/bucket/{key}");
                let canonical = canonical_path(&path, PathMode::S3);
                prop_assert_eq!(check_encoded(&canonical, b"/"), Ok(()));
                prop_assert_eq!(percent_decode(&canonical), path.clone());
                prop_assert_eq!(&canonical, &encode_path(&path));
            }

            /// The same holds through the signer: the path of the canonical request.
            #[test]
            fn signed_s3_path_decodes_back_to_the_key(key in text()) {
                let path = format!("/b/{key}");
                let signer = Signer::new(Credentials::new("AKID", "secret", None), "us-east-1", "s3", Mode::S3);
                let req = Request { method: "GET", host: "h", path: &path, query: &[], headers: &[] };
                let now = datetime!(2013-05-24 00:00:00 UTC);
                let signed = signer.sign(&req, PayloadHash::Unsigned, now);
                prop_assert_eq!(percent_decode(&signed.canonical_request.path), path);
            }

            /// Generic mode: whatever the raw path, the canonical path is well formed.
            #[test]
            fn generic_canonical_path_is_well_formed(raw in text()) {
                let canonical = canonical_path(&format!("/{raw}"), PathMode::NormalizedDoubleEncoded);
                prop_assert!(canonical.starts_with('/'));
                prop_assert_eq!(check_encoded(&canonical, b"/"), Ok(()));
            }

            /// One component: no `+`, no lower-case escape, and it decodes back.
            #[test]
            fn component_encoding_has_no_plus_nor_lower_case_escape(s in text()) {
                let encoded = encode_component(&s);
                prop_assert_eq!(check_encoded(&encoded, b""), Ok(()));
                prop_assert_eq!(percent_decode(&encoded), s);
            }

            /// A whole canonical query: no `+`, no lower-case escape, sorted, and it decodes
            /// back to the same pairs.
            #[test]
            fn canonical_query_has_no_plus_nor_lower_case_escape(
                pairs in proptest::collection::vec((text(), text()), 0..6)
            ) {
                let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let query = canonical_query(&borrowed);
                prop_assert_eq!(check_encoded(&query, b"&="), Ok(()));

                let parts: Vec<&str> = if query.is_empty() { vec![] } else { query.split('&').collect() };
                prop_assert_eq!(parts.len(), pairs.len());
                prop_assert!(parts.windows(2).all(|w| {
                    let key = |p: &str| p.split_once('=').map(|(k, _)| k.to_owned()).unwrap_or_default();
                    key(w[0]) <= key(w[1])
                }), "not sorted by encoded key: {}", query);

                let mut decoded = decode_query(&query);
                decoded.sort();
                let mut expected = pairs.clone();
                expected.sort();
                prop_assert_eq!(decoded, expected);
            }

            /// A presigned query string, session token and caller parameters included.
            #[test]
            fn presigned_query_has_no_plus_nor_lower_case_escape(
                key in text(),
                pairs in proptest::collection::vec((text(), text()), 0..4),
                token in "[A-Za-z0-9+/=]{1,40}",
            ) {
                let path = format!("/b/{key}");
                let signer = Signer::new(
                    Credentials::new("AKID", "secret", Some(token.clone())),
                    "us-east-1",
                    "s3",
                    Mode::S3,
                );
                let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let req = Request { method: "GET", host: "h", path: &path, query: &borrowed, headers: &[] };
                let now = datetime!(2013-05-24 00:00:00 UTC);
                let presigned = signer.presign(&req, PayloadHash::Unsigned, 3600, now).unwrap();
                prop_assert_eq!(check_encoded(&presigned.query, b"&="), Ok(()));
                let decoded = decode_query(&presigned.query);
                prop_assert!(decoded.contains(&("X-Amz-Security-Token".to_owned(), token)));
                for pair in &pairs {
                    prop_assert!(decoded.contains(pair), "{:?} missing from {}", pair, presigned.query);
                }
            }
        }
    }
}
