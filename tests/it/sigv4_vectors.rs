//! The official AWS SigV4 test suites, one `#[test]` per case folder (and per signature
//! location), run against `parparchik::sigv4`:
//!
//! - `sigv4::botocore::*`: the classic suite (`.req/.creq/.sts/.authz/.sreq`) as shipped in
//!   botocore 1.44.8, in `sigv4-vectors/botocore/aws4_testsuite/`;
//! - `sigv4::v4::<case>::{header, query}`: the newer suite (`context.json`, header and
//!   presigned-query variants) as shipped in the `aws-sigv4` 1.6.4 crate, in
//!   `sigv4-vectors/aws-sigv4/aws-signing-test-suite/v4/`.
//!
//! Every case compares the exact canonical request, string to sign and signature (and the
//! `Authorization` value), then checks the signed request of the suite: the headers the
//! signer adds, or the parameters of the presigned query. How each case maps onto
//! `Mode` is explained in `sigv4-vectors/README.md`.

mod sigv4 {
    use std::path::{Path, PathBuf};

    use parparchik::sigv4::{
        ContentSha256Header, Credentials, Mode, PathMode, PayloadHash, Request, SessionTokenMode,
        SignedHeaders, Signer, amz_date, sha256_hex,
    };
    use serde::Deserialize;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    use crate::support::sigv4::*;

    // ------------------------------------------------------------------ shared helpers

    /// `YYYYMMDDTHHMMSSZ` → time.
    fn parse_amz_date(s: &str) -> OffsetDateTime {
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        time::PrimitiveDateTime::parse(s, format)
            .unwrap_or_else(|e| panic!("bad x-amz-date {s:?}: {e}"))
            .assume_utc()
    }

    /// The secret of each access key id that appears in the suites.
    fn secret_for(access_key_id: &str) -> &'static str {
        match access_key_id {
            // Both suites.
            "AKIDEXAMPLE" => "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            // `v4/double-encode-path`: aws-sigv4 signs it with its `Credentials::for_tests()`.
            "ANOTREAL" => "notrealrnrELgWzOk3IfjzDKtFBhDby",
            other => panic!("no known secret for access key id {other:?}"),
        }
    }

    /// The headers of a suite request that go into [`Request::headers`]: all but `Host`
    /// (passed as [`Request::host`]) and the `x-amz-*` headers the signer itself adds.
    fn caller_headers(req: &RawRequest) -> Vec<(&str, &str)> {
        req.headers
            .iter()
            .filter(|(n, _)| {
                ![
                    "host",
                    "x-amz-date",
                    "x-amz-security-token",
                    "x-amz-content-sha256",
                ]
                .iter()
                .any(|h| n.eq_ignore_ascii_case(h))
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn host_of(req: &RawRequest) -> &str {
        req.header("host")
            .expect("every request of the suites has a Host header")
    }

    /// The headers sent after header signing: the request's own (`Host` and the caller
    /// headers) and those the signer returns. Compared with a signed request of the suite.
    fn sent_headers(req: &RawRequest, signed: &SignedHeaders) -> Vec<(String, String)> {
        let mut sent = caller_headers(req);
        sent.push(("host", host_of(req)));
        for (name, value) in signed.headers() {
            sent.push((name, value));
        }
        normalized_headers(sent)
    }

    fn assert_signed_request_headers(
        case: &str,
        req: &RawRequest,
        signed: &SignedHeaders,
        expected: &RawRequest,
    ) {
        let expected_headers = normalized_headers(
            expected
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        assert_eq!(
            expected_headers,
            sent_headers(req, signed),
            "{case}: headers of the signed request"
        );
        assert_eq!(
            expected.method, req.method,
            "{case}: method of the signed request"
        );
        assert_eq!(
            expected.path, req.path,
            "{case}: path of the signed request"
        );
        assert_eq!(
            expected.body, req.body,
            "{case}: body of the signed request"
        );
    }

    // ------------------------------------------------------------------ classic suite

    const BOTOCORE_SUITE: &str = "botocore/aws4_testsuite";

    /// Cases whose `.sreq` is known to be wrong in botocore 1.44.8 (the `.authz` is right).
    /// The test then checks that it still differs, so a refresh that fixes it is noticed.
    const BOTOCORE_BAD_SREQ: &[&str] = &["get-vanilla-with-session-token"];

    /// The fixed signing context of the classic suite (botocore's `test_sigv4.py`).
    const BOTOCORE_TIME: &str = "20150830T123600Z";
    const BOTOCORE_REGION: &str = "us-east-1";
    const BOTOCORE_SERVICE: &str = "service";

    /// Runs one case of the classic suite in generic mode (normalised, double-encoded path,
    /// no `x-amz-content-sha256`), which is what the suite describes.
    fn run_botocore(case: &str) {
        let dir = vectors_dir().join(BOTOCORE_SUITE).join(case);
        let stem = case.rsplit('/').next().unwrap_or(case);
        let file = |ext: &str| dir.join(format!("{stem}.{ext}"));

        let req = parse_request(&read(&file("req")));
        let expected_creq = read_expected(&file("creq"));
        let expected_sts = read_expected(&file("sts"));
        let expected_authz = read_expected(&file("authz"));
        let sreq = parse_request(&read(&file("sreq")));

        // botocore's convention: the session token of a case is the `x-amz-security-token`
        // line of its `.creq`, and is then signed. `post-sts-header-after` instead adds the
        // token after signing (see `post-sts-token/readme.txt`): its token is only in the
        // `.sreq`, and it is appended unsigned.
        let signed_token = expected_creq
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-security-token:"));
        let (token, session_token) = match signed_token {
            Some(t) => (Some(t.to_owned()), SessionTokenMode::Signed),
            None => (
                sreq.header("x-amz-security-token").map(str::to_owned),
                SessionTokenMode::AppendedUnsigned,
            ),
        };
        if let Some(t) = req.header("x-amz-security-token") {
            assert_eq!(Some(t), token.as_deref(), "{case}: token of the .req");
        }
        let mode = Mode {
            path: PathMode::NormalizedDoubleEncoded,
            content_sha256: ContentSha256Header::Omit,
            session_token,
        };

        let now = parse_amz_date(BOTOCORE_TIME);
        if let Some(d) = req.header("x-amz-date") {
            assert_eq!(d.trim(), amz_date(now), "{case}: x-amz-date of the .req");
        }
        let signer = Signer::new(
            Credentials::new("AKIDEXAMPLE", secret_for("AKIDEXAMPLE"), token),
            BOTOCORE_REGION,
            BOTOCORE_SERVICE,
            mode,
        );
        let query = req.query_pairs();
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let headers = caller_headers(&req);
        let request = Request {
            method: &req.method,
            host: host_of(&req),
            path: &req.path,
            query: &query,
            headers: &headers,
        };
        let body_hash = sha256_hex(req.body.as_bytes());
        let signed = signer.sign(&request, PayloadHash::Sha256(&body_hash), now);

        assert_text_eq(
            case,
            "canonical request (.creq)",
            &expected_creq,
            &signed.canonical_request.to_string(),
        );
        assert_text_eq(
            case,
            "string to sign (.sts)",
            &expected_sts,
            &signed.string_to_sign,
        );
        assert_text_eq(
            case,
            "signature (.authz)",
            signature_of(&expected_authz),
            &signed.signature,
        );
        assert_text_eq(
            case,
            "authorization (.authz)",
            &expected_authz,
            &signed.authorization,
        );

        let sreq_authz = sreq
            .header("authorization")
            .map(str::trim)
            .unwrap_or_default();
        if BOTOCORE_BAD_SREQ.contains(&case) {
            assert_ne!(
                sreq_authz, expected_authz,
                "{case}: the .sreq is now right: remove the case from BOTOCORE_BAD_SREQ and the README"
            );
        } else {
            assert_signed_request_headers(case, &req, &signed, &sreq);
        }
    }

    macro_rules! botocore_cases {
        ($($(#[$attr:meta])* $name:ident => $dir:literal,)*) => {
            /// The classic suite, one test per case folder.
            mod botocore {
                $(
                    $(#[$attr])*
                    #[test]
                    fn $name() {
                        super::run_botocore($dir);
                    }
                )*
            }
            const BOTOCORE_CASES: &[&str] = &[$($dir),*];
        };
    }

    botocore_cases! {
        get_header_key_duplicate => "get-header-key-duplicate",
        get_header_value_multiline => "get-header-value-multiline",
        get_header_value_order => "get-header-value-order",
        get_header_value_trim => "get-header-value-trim",
        get_unreserved => "get-unreserved",
        get_utf8 => "get-utf8",
        get_vanilla => "get-vanilla",
        get_vanilla_empty_query_key => "get-vanilla-empty-query-key",
        get_vanilla_query => "get-vanilla-query",
        get_vanilla_query_order_encoded => "get-vanilla-query-order-encoded",
        get_vanilla_query_order_key => "get-vanilla-query-order-key",
        get_vanilla_query_order_key_case => "get-vanilla-query-order-key-case",
        get_vanilla_query_order_value => "get-vanilla-query-order-value",
        get_vanilla_query_unreserved => "get-vanilla-query-unreserved",
        get_vanilla_utf8_query => "get-vanilla-utf8-query",
        get_vanilla_with_session_token => "get-vanilla-with-session-token",
        normalize_path_get_relative => "normalize-path/get-relative",
        normalize_path_get_relative_relative => "normalize-path/get-relative-relative",
        normalize_path_get_slash => "normalize-path/get-slash",
        normalize_path_get_slash_dot_slash => "normalize-path/get-slash-dot-slash",
        normalize_path_get_slash_pointless_dot => "normalize-path/get-slash-pointless-dot",
        normalize_path_get_slashes => "normalize-path/get-slashes",
        normalize_path_get_space => "normalize-path/get-space",
        normalize_path_get_special_character => "normalize-path/get-special-character",
        post_header_key_case => "post-header-key-case",
        post_header_key_sort => "post-header-key-sort",
        post_header_value_case => "post-header-value-case",
        post_sts_header_after => "post-sts-token/post-sts-header-after",
        post_sts_header_before => "post-sts-token/post-sts-header-before",
        post_vanilla => "post-vanilla",
        post_vanilla_empty_query_value => "post-vanilla-empty-query-value",
        post_vanilla_query => "post-vanilla-query",
        post_x_www_form_urlencoded => "post-x-www-form-urlencoded",
        post_x_www_form_urlencoded_parameters => "post-x-www-form-urlencoded-parameters",
    }

    // ------------------------------------------------------------------ v4 suite

    const V4_SUITE: &str = "aws-sigv4/aws-signing-test-suite/v4";

    /// `context.json` of a v4 case.
    #[derive(Deserialize)]
    struct V4Context {
        credentials: V4Credentials,
        expiration_in_seconds: u64,
        normalize: bool,
        region: String,
        service: String,
        sign_body: bool,
        timestamp: String,
        #[serde(default)]
        omit_session_token: bool,
    }

    #[derive(Deserialize)]
    struct V4Credentials {
        access_key_id: String,
        secret_access_key: String,
        token: Option<String>,
    }

    #[derive(Clone, Copy, Debug)]
    enum Location {
        Header,
        Query,
    }

    fn v4_dir(case: &str) -> PathBuf {
        vectors_dir().join(V4_SUITE).join(case)
    }

    /// Runs one v4 case with a `context.json`, in one signature location.
    ///
    /// - `normalize: true` → [`PathMode::NormalizedDoubleEncoded`] on the raw path;
    ///   `normalize: false` → [`PathMode::S3`] on the decoded path. The suite's
    ///   unnormalised mode encodes the raw path once more without removing dot segments;
    ///   S3 mode encodes the decoded path once without removing them, which is the same
    ///   text as long as the raw path holds no `%` escape (checked below).
    /// - `sign_body` → [`ContentSha256Header::Include`], else `Omit`; the last line of the
    ///   canonical request is the hash of the body either way.
    /// - `omit_session_token` → [`SessionTokenMode::AppendedUnsigned`], else `Signed`.
    fn run_v4(case: &str, location: Location) {
        let dir = v4_dir(case);
        let name = format!("{case} ({location:?})");
        let ctx: V4Context = serde_json::from_str(&read(&dir.join("context.json")))
            .unwrap_or_else(|e| panic!("{case}: context.json: {e}"));
        let req = parse_request(&read(&dir.join("request.txt")));

        let mode = Mode {
            path: if ctx.normalize {
                PathMode::NormalizedDoubleEncoded
            } else {
                PathMode::S3
            },
            content_sha256: if ctx.sign_body {
                ContentSha256Header::Include
            } else {
                ContentSha256Header::Omit
            },
            session_token: if ctx.omit_session_token {
                SessionTokenMode::AppendedUnsigned
            } else {
                SessionTokenMode::Signed
            },
        };
        let path = if ctx.normalize {
            req.path.clone()
        } else {
            assert!(
                !req.path.contains('%'),
                "{case}: an unnormalised case with an escaped path needs a double-encoding \
                 mode without normalisation, which PathMode does not have"
            );
            percent_decode(&req.path)
        };
        let now = OffsetDateTime::parse(&ctx.timestamp, &Rfc3339)
            .unwrap_or_else(|e| panic!("{case}: timestamp: {e}"));
        let signer = Signer::new(
            Credentials::new(
                ctx.credentials.access_key_id.as_str(),
                ctx.credentials.secret_access_key.as_str(),
                ctx.credentials.token.clone(),
            ),
            ctx.region.as_str(),
            ctx.service.as_str(),
            mode,
        );
        let query = req.query_pairs();
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let headers = caller_headers(&req);
        let request = Request {
            method: &req.method,
            host: host_of(&req),
            path: &path,
            query: &query,
            headers: &headers,
        };
        let body_hash = sha256_hex(req.body.as_bytes());
        let payload = PayloadHash::Sha256(&body_hash);

        match location {
            Location::Header => {
                let signed = signer.sign(&request, payload, now);
                let sreq = parse_request(&read(&dir.join("header-signed-request.txt")));
                assert_text_eq(
                    &name,
                    "header-canonical-request.txt",
                    &read_expected(&dir.join("header-canonical-request.txt")),
                    &signed.canonical_request.to_string(),
                );
                assert_text_eq(
                    &name,
                    "header-string-to-sign.txt",
                    &read_expected(&dir.join("header-string-to-sign.txt")),
                    &signed.string_to_sign,
                );
                assert_text_eq(
                    &name,
                    "header-signature.txt",
                    &read_expected(&dir.join("header-signature.txt")),
                    &signed.signature,
                );
                let authz = sreq
                    .header("authorization")
                    .expect("signed request has Authorization");
                assert_text_eq(
                    &name,
                    "Authorization of header-signed-request.txt",
                    authz.trim(),
                    &signed.authorization,
                );
                assert_signed_request_headers(&name, &req, &signed, &sreq);
            }
            Location::Query => {
                let presigned = signer
                    .presign(&request, payload, ctx.expiration_in_seconds, now)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_text_eq(
                    &name,
                    "query-canonical-request.txt",
                    &read_expected(&dir.join("query-canonical-request.txt")),
                    &presigned.canonical_request.to_string(),
                );
                assert_text_eq(
                    &name,
                    "query-string-to-sign.txt",
                    &read_expected(&dir.join("query-string-to-sign.txt")),
                    &presigned.string_to_sign,
                );
                assert_text_eq(
                    &name,
                    "query-signature.txt",
                    &read_expected(&dir.join("query-signature.txt")),
                    &presigned.signature,
                );

                // The signed request of the suite: same method, path, headers and body as
                // the request; its query holds the same parameters as ours (the order of
                // the suite's URL is not canonical, so both are compared decoded, sorted).
                let sreq = parse_request(&read(&dir.join("query-signed-request.txt")));
                let mut expected_params = sreq.query_pairs();
                expected_params.sort();
                let mut actual_params = decode_query(&presigned.query);
                actual_params.sort();
                assert_eq!(
                    expected_params, actual_params,
                    "{name}: query of query-signed-request.txt"
                );
                let sent = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                let expected = sreq.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                assert_eq!(
                    normalized_headers(expected),
                    normalized_headers(sent),
                    "{name}: headers"
                );
                assert_eq!(
                    (&sreq.method, &sreq.path, &sreq.body),
                    (&req.method, &req.path, &req.body),
                    "{name}: method, path and body of query-signed-request.txt"
                );
            }
        }
    }

    /// `double-encode-path` and `double-url-encode` predate `context.json` (see the suite's
    /// README): only the header variant exists, and the signing context is implied.
    ///
    /// - The canonical request is signed at `creq_time` (aws-sigv4 1.6.4 checks both
    ///   canonical requests with a signing time of `20210511T154045Z`; the signer's own
    ///   `x-amz-date` replaces the request's header).
    /// - The signature of `header-signed-request.txt` is signed at the request's
    ///   `X-Amz-Date`, with the access key, region and service of its `Credential=`.
    /// - Default settings otherwise: normalised, double-encoded path; no
    ///   `x-amz-content-sha256`; no session token.
    fn run_v4_legacy(case: &str, creq_time: &str) {
        let dir = v4_dir(case);
        let req = parse_request(&read(&dir.join("request.txt")));
        let sreq = parse_request(&read(&dir.join("header-signed-request.txt")));
        let authz = sreq
            .header("authorization")
            .expect("signed request has Authorization")
            .trim()
            .to_owned();
        let (key, date, region, service) = credential_of(&authz);
        let headers = caller_headers(&req);
        let request = Request {
            method: &req.method,
            host: host_of(&req),
            path: &req.path,
            query: &[],
            headers: &headers,
        };
        let body_hash = sha256_hex(req.body.as_bytes());
        let signer = Signer::new(
            Credentials::new(key, secret_for(key), None),
            region,
            service,
            Mode::GENERIC,
        );

        let for_creq = signer.sign(
            &request,
            PayloadHash::Sha256(&body_hash),
            parse_amz_date(creq_time),
        );
        assert_text_eq(
            case,
            "header-canonical-request.txt",
            &read_expected(&dir.join("header-canonical-request.txt")),
            &for_creq.canonical_request.to_string(),
        );

        let request_time = req
            .header("x-amz-date")
            .expect("request has X-Amz-Date")
            .trim();
        assert!(
            request_time.starts_with(date),
            "{case}: Credential date vs X-Amz-Date"
        );
        let signed = signer.sign(
            &request,
            PayloadHash::Sha256(&body_hash),
            parse_amz_date(request_time),
        );
        let sts = dir.join("header-string-to-sign.txt");
        if exists(&sts) {
            assert_text_eq(
                case,
                "header-string-to-sign.txt",
                &read_expected(&sts),
                &signed.string_to_sign,
            );
        }
        assert_text_eq(
            case,
            "signature (header-signed-request.txt)",
            signature_of(&authz),
            &signed.signature,
        );
        assert_text_eq(
            case,
            "Authorization of header-signed-request.txt",
            &authz,
            &signed.authorization,
        );
        assert_signed_request_headers(case, &req, &signed, &sreq);
    }

    macro_rules! v4_cases {
        ($($(#[$attr:meta])* $name:ident => $dir:literal,)*) => {
            $(
                /// One v4 case: the header variant and the presigned-query variant.
                mod $name {
                    $(#[$attr])*
                    #[test]
                    fn header() {
                        crate::sigv4_vectors::sigv4::run_v4($dir, crate::sigv4_vectors::sigv4::Location::Header);
                    }

                    $(#[$attr])*
                    #[test]
                    fn query() {
                        crate::sigv4_vectors::sigv4::run_v4($dir, crate::sigv4_vectors::sigv4::Location::Query);
                    }
                }
            )*
            /// The cases with a `context.json`.
            pub(super) const CASES: &[&str] = &[$($dir),*];
        };
    }

    /// The v4 suite: one module per case folder, with a `header` and a `query` test.
    mod v4 {
        v4_cases! {
            get_header_key_duplicate => "get-header-key-duplicate",
            get_header_value_multiline => "get-header-value-multiline",
            get_header_value_order => "get-header-value-order",
            get_header_value_trim => "get-header-value-trim",
            get_relative_normalized => "get-relative-normalized",
            get_relative_relative_normalized => "get-relative-relative-normalized",
            get_relative_relative_unnormalized => "get-relative-relative-unnormalized",
            get_relative_unnormalized => "get-relative-unnormalized",
            get_slash_dot_slash_normalized => "get-slash-dot-slash-normalized",
            get_slash_dot_slash_unnormalized => "get-slash-dot-slash-unnormalized",
            get_slash_normalized => "get-slash-normalized",
            get_slash_pointless_dot_normalized => "get-slash-pointless-dot-normalized",
            get_slash_pointless_dot_unnormalized => "get-slash-pointless-dot-unnormalized",
            get_slash_unnormalized => "get-slash-unnormalized",
            get_slashes_normalized => "get-slashes-normalized",
            get_slashes_unnormalized => "get-slashes-unnormalized",
            #[ignore = "inconsistent vector: request.txt pre-encodes the space \
                        (/example%20space/) and normalize=true double-encodes it to \
                        /example%2520space/ as double-url-encode requires, yet the expected \
                        path is /example%20space/; get-space-unnormalized signs the same \
                        texts from a raw space and passes; aws-sigv4 1.6.4 ignores it too"]
            get_space_normalized => "get-space-normalized",
            get_space_unnormalized => "get-space-unnormalized",
            get_unreserved => "get-unreserved",
            get_utf8 => "get-utf8",
            get_vanilla => "get-vanilla",
            get_vanilla_empty_query_key => "get-vanilla-empty-query-key",
            get_vanilla_query => "get-vanilla-query",
            get_vanilla_query_order_encoded => "get-vanilla-query-order-encoded",
            get_vanilla_query_order_key_case => "get-vanilla-query-order-key-case",
            get_vanilla_query_unreserved => "get-vanilla-query-unreserved",
            get_vanilla_utf8_query => "get-vanilla-utf8-query",
            get_vanilla_with_session_token => "get-vanilla-with-session-token",
            post_header_key_case => "post-header-key-case",
            post_header_key_sort => "post-header-key-sort",
            post_header_value_case => "post-header-value-case",
            post_sts_header_after => "post-sts-header-after",
            post_sts_header_before => "post-sts-header-before",
            post_vanilla => "post-vanilla",
            post_vanilla_empty_query_value => "post-vanilla-empty-query-value",
            post_vanilla_query => "post-vanilla-query",
            post_x_www_form_urlencoded => "post-x-www-form-urlencoded",
            post_x_www_form_urlencoded_parameters => "post-x-www-form-urlencoded-parameters",
        }

        /// Legacy cases without `context.json`: header variant only.
        pub(super) const LEGACY_CASES: &[&str] = &["double-encode-path", "double-url-encode"];

        mod double_encode_path {
            /// `/test/@connections/JBDvjfGEIAMCERw%3D`: `%3D` is signed as `%253D`.
            #[test]
            fn header() {
                crate::sigv4_vectors::sigv4::run_v4_legacy(
                    "double-encode-path",
                    "20210511T154045Z",
                );
            }
        }

        mod double_url_encode {
            /// A Lambda ARN in the path: every `%3A` is signed as `%253A`.
            #[test]
            fn header() {
                crate::sigv4_vectors::sigv4::run_v4_legacy("double-url-encode", "20210511T154045Z");
            }
        }

        /// Every case folder on disk has its test here, and every listed case is on disk.
        #[test]
        fn every_case_folder_has_a_test() {
            let mut on_disk: Vec<String> = std::fs::read_dir(super::v4_dir(""))
                .expect("v4 suite present")
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            on_disk.sort();
            let mut listed: Vec<String> = CASES
                .iter()
                .chain(LEGACY_CASES)
                .map(|s| (*s).to_owned())
                .collect();
            listed.sort();
            assert_eq!(on_disk, listed);
            for case in CASES {
                assert!(
                    super::v4_dir(case).join("context.json").is_file(),
                    "{case}: context.json"
                );
            }
        }
    }

    /// Every case folder of the classic suite (a folder holding a `.req`) has its test.
    #[test]
    fn botocore_every_case_folder_has_a_test() {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("readable suite folder") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else if path.extension().is_some_and(|e| e == "req") {
                    let rel = dir.strip_prefix(root).expect("inside the suite");
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = vectors_dir().join(BOTOCORE_SUITE);
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = BOTOCORE_CASES.iter().map(|s| (*s).to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    /// `sigv4-vectors/README.md` names every case, so the list there cannot drift.
    #[test]
    fn readme_lists_every_case() {
        let readme = read(&vectors_dir().join("README.md"));
        let v4 = v4::CASES.iter().chain(v4::LEGACY_CASES);
        for case in BOTOCORE_CASES.iter().chain(v4) {
            assert!(
                readme.contains(&format!("`{case}`")),
                "README.md does not list `{case}`"
            );
        }
    }

    /// The loader itself, on the quirks it exists for.
    #[test]
    fn loader_handles_the_quirks_of_the_files() {
        let r = parse_request(
            "GET /example space/?a=%E1%88%B4&b HTTP/1.1\nHost:h\nMy:v1\n  v2\n     v3",
        );
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/example space/");
        assert_eq!(
            r.query_pairs(),
            [("a".into(), "ሴ".into()), ("b".into(), String::new())]
        );
        assert_eq!(r.header("my"), Some("v1 v2 v3"));
        assert_eq!(r.body, "");

        let r = parse_request("POST /p%3A\nHost:h\n\nParam1=value1");
        assert_eq!((r.path.as_str(), r.query.as_deref()), ("/p%3A", None));
        assert_eq!(r.body, "Param1=value1");

        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a+b%2b"), "a+b+");
    }
}
