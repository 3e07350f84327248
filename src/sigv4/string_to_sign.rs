//! Step 2: the credential scope and the string to sign.

/// `YYYYMMDD/region/service/aws4_request`; `amz_date` is the full `YYYYMMDDTHHMMSSZ`.
pub fn scope(amz_date: &str, region: &str, service: &str) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    format!("{date}/{region}/{service}/aws4_request")
}

/// The four lines that get signed.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request_sha256: &str) -> String {
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{canonical_request_sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_documented_layout() {
        let s = scope("20150830T123600Z", "us-east-1", "iam");
        assert_eq!(s, "20150830/us-east-1/iam/aws4_request");
        assert_eq!(
            string_to_sign("20150830T123600Z", &s, "abc"),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nabc"
        );
    }
}
