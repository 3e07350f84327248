//! The worked SigV4 examples of the Amazon S3 API Reference, one `#[test]` each, run in
//! `Mode::S3`: `sigv4::s3::*`. The inputs and expected texts are data files in
//! `sigv4-vectors/s3-examples/<example>/`; `sigv4-vectors/README.md` names the pages they
//! come from.

mod sigv4 {
    use parparchik::sigv4::{Credentials, Mode, PayloadHash, Request, Signer, sha256_hex};
    use serde::Deserialize;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    use crate::support::sigv4::*;

    const EXAMPLES: &str = "s3-examples";

    /// `request.json` of an example.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        /// The page and example the values come from.
        #[allow(dead_code)]
        source: String,
        credentials: ExampleCredentials,
        region: String,
        service: String,
        timestamp: String,
        /// `header` (an `Authorization` header) or `query` (a presigned URL).
        signature_location: String,
        expiration_in_seconds: Option<u64>,
        method: String,
        host: String,
        /// The decoded resource path, as S3 mode takes it.
        path: String,
        /// Decoded `(key, value)` pairs.
        query: Vec<(String, String)>,
        /// Headers besides `host` and the `x-amz-*` ones the signer adds.
        headers: Vec<(String, String)>,
        body: String,
        /// `sha256` (the hash of `body`) or `UNSIGNED-PAYLOAD`.
        payload: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ExampleCredentials {
        access_key_id: String,
        secret_access_key: String,
    }

    fn run(name: &str) {
        let dir = vectors_dir().join(EXAMPLES).join(name);
        let ex: Example = serde_json::from_str(&read(&dir.join("request.json")))
            .unwrap_or_else(|e| panic!("{name}: request.json: {e}"));
        let expected = |file: &str| read_expected(&dir.join(file));

        assert_eq!(ex.service, "s3", "{name}: the S3 examples run in S3 mode");
        let signer = Signer::new(
            Credentials::new(
                ex.credentials.access_key_id.as_str(),
                ex.credentials.secret_access_key.as_str(),
                None,
            ),
            ex.region.as_str(),
            ex.service.as_str(),
            Mode::S3,
        );
        let now = OffsetDateTime::parse(&ex.timestamp, &Rfc3339)
            .unwrap_or_else(|e| panic!("{name}: timestamp: {e}"));
        let body_hash = sha256_hex(ex.body.as_bytes());
        let payload = match ex.payload.as_str() {
            "sha256" => PayloadHash::Sha256(&body_hash),
            "UNSIGNED-PAYLOAD" => PayloadHash::Unsigned,
            other => panic!("{name}: unknown payload {other:?}"),
        };
        let query: Vec<(&str, &str)> = ex
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let headers: Vec<(&str, &str)> = ex
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let request = Request {
            method: &ex.method,
            host: &ex.host,
            path: &ex.path,
            query: &query,
            headers: &headers,
        };

        match ex.signature_location.as_str() {
            "header" => {
                let signed = signer.sign(&request, payload, now);
                assert_text_eq(
                    name,
                    "canonical-request.txt",
                    &expected("canonical-request.txt"),
                    &signed.canonical_request.to_string(),
                );
                assert_text_eq(
                    name,
                    "string-to-sign.txt",
                    &expected("string-to-sign.txt"),
                    &signed.string_to_sign,
                );
                assert_text_eq(
                    name,
                    "signature.txt",
                    &expected("signature.txt"),
                    &signed.signature,
                );
                // The documentation writes the Authorization value without a space after
                // the commas; the signer writes `, ` as the AWS suites and SDKs do. S3
                // accepts both, so only the separators are allowed to differ.
                assert_text_eq(
                    name,
                    "authorization.txt (separators aside)",
                    &expected("authorization.txt"),
                    &signed.authorization.replace(", ", ","),
                );
                assert_eq!(
                    signed.x_amz_content_sha256.as_deref(),
                    Some(payload.as_str()),
                    "{name}: x-amz-content-sha256 is sent and equals the payload hash"
                );
            }
            "query" => {
                let expires = ex
                    .expiration_in_seconds
                    .expect("a presigned example has an expiry");
                let presigned = signer
                    .presign(&request, payload, expires, now)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_text_eq(
                    name,
                    "canonical-request.txt",
                    &expected("canonical-request.txt"),
                    &presigned.canonical_request.to_string(),
                );
                assert_text_eq(
                    name,
                    "string-to-sign.txt",
                    &expected("string-to-sign.txt"),
                    &presigned.string_to_sign,
                );
                assert_text_eq(
                    name,
                    "signature.txt",
                    &expected("signature.txt"),
                    &presigned.signature,
                );
                // The URL as sent: the canonical (encoded) path, then the query string
                // exactly as the signer returns it.
                let url = format!(
                    "https://{}{}?{}",
                    ex.host, presigned.canonical_request.path, presigned.query
                );
                assert_text_eq(
                    name,
                    "presigned-url.txt",
                    &expected("presigned-url.txt"),
                    &url,
                );
            }
            other => panic!("{name}: unknown signature_location {other:?}"),
        }
    }

    macro_rules! s3_examples {
        ($($name:ident => $dir:literal,)*) => {
            /// One test per worked example of the S3 API Reference.
            mod s3 {
                $(
                    #[test]
                    fn $name() {
                        super::run($dir);
                    }
                )*

                /// Every example folder has its test, and every listed example is on disk.
                #[test]
                fn every_example_folder_has_a_test() {
                    let root = crate::support::sigv4::vectors_dir().join(super::EXAMPLES);
                    let mut on_disk: Vec<String> = std::fs::read_dir(root)
                        .expect("s3-examples present")
                        .map(|e| e.expect("dir entry"))
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    on_disk.sort();
                    let mut listed = vec![$($dir),*];
                    listed.sort_unstable();
                    assert_eq!(on_disk, listed);
                }
            }
        };
    }

    s3_examples! {
        get_object_range => "get-object-range",
        put_object => "put-object",
        get_bucket_lifecycle => "get-bucket-lifecycle",
        list_objects => "list-objects",
        presigned_get_object => "presigned-get-object",
    }
}
