//! Source 3: a web identity token (EKS IRSA's projected service-account token, or a
//! token MinIO's STS accepts) exchanged for temporary credentials with STS
//! `AssumeRoleWithWebIdentity`. The call is unsigned: the token is the proof. The token
//! file is re-read at every refresh because the kubelet rotates it.

use std::path::PathBuf;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{CredentialsError, Fetched, SourceKind, parse_expiration};
use crate::sigv4::Credentials;
use crate::sigv4::encode::encode_component;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentitySettings {
    pub token_file: PathBuf,
    pub role_arn: String,
    /// `AWS_ROLE_SESSION_NAME`, else one derived from the start time.
    pub session_name: String,
    /// `AWS_ENDPOINT_URL_STS`, else `https://sts.<region>.amazonaws.com`.
    pub endpoint: String,
}

impl WebIdentitySettings {
    /// `Ok(None)` when neither variable is set.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        region: &str,
        session_suffix: u64,
    ) -> Result<Option<Self>, CredentialsError> {
        let (token_file, role_arn) = match (get("AWS_WEB_IDENTITY_TOKEN_FILE"), get("AWS_ROLE_ARN"))
        {
            (None, None) => return Ok(None),
            (Some(f), Some(r)) => (PathBuf::from(f.trim()), r.trim().to_owned()),
            (Some(_), None) => {
                return Err(CredentialsError::Config {
                    variable: "AWS_ROLE_ARN",
                    problem:
                        "is not set but AWS_WEB_IDENTITY_TOKEN_FILE is; web identity needs both"
                            .into(),
                });
            }
            (None, Some(_)) => {
                return Err(CredentialsError::Config {
                    variable: "AWS_WEB_IDENTITY_TOKEN_FILE",
                    problem: "is not set but AWS_ROLE_ARN is; web identity needs both".into(),
                });
            }
        };
        let endpoint = match get("AWS_ENDPOINT_URL_STS") {
            Some(e) => {
                let e = e.trim().trim_end_matches('/').to_owned();
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(CredentialsError::Config {
                        variable: "AWS_ENDPOINT_URL_STS",
                        problem: format!("{e:?} is not an http:// or https:// URL"),
                    });
                }
                e
            }
            None => format!("https://sts.{region}.amazonaws.com"),
        };
        Ok(Some(WebIdentitySettings {
            token_file,
            role_arn,
            session_name: get("AWS_ROLE_SESSION_NAME")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|| format!("parparchik-{session_suffix}")),
            endpoint,
        }))
    }

    /// The form body of the call (POST, `application/x-www-form-urlencoded`).
    pub fn request_body(&self, token: &str) -> String {
        format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
            encode_component(&self.role_arn),
            encode_component(&self.session_name),
            encode_component(token.trim()),
        )
    }
}

/// The text of the innermost elements ending with each of `wanted` (local names, so
/// namespaces do not matter), entities resolved.
fn texts(xml: &[u8], wanted: &[&[&str]]) -> Result<Vec<Option<String>>, String> {
    let mut reader = Reader::from_reader(xml);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut found: Vec<Option<String>> = vec![None; wanted.len()];
    let mut buf = Vec::new();
    let mut push = |stack: &[Vec<u8>], text: &str| {
        for (i, path) in wanted.iter().enumerate() {
            let here = stack.len() >= path.len()
                && stack[stack.len() - path.len()..]
                    .iter()
                    .zip(path.iter())
                    .all(|(a, b)| a.as_slice() == b.as_bytes());
            if here {
                found[i].get_or_insert_with(String::new).push_str(text);
            }
        }
    };
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => stack.push(e.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                stack.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map_err(|e| format!("bad text in XML: {e}"))?;
                push(&stack, &text);
            }
            Ok(Event::GeneralRef(r)) => {
                // quick-xml reports `&amp;` and friends separately; credentials never hold
                // them, messages may.
                let ch = match r.as_ref() {
                    b"amp" => "&",
                    b"lt" => "<",
                    b"gt" => ">",
                    b"quot" => "\"",
                    b"apos" => "'",
                    _ => "?",
                };
                push(&stack, ch);
            }
            Ok(Event::Eof) => return Ok(found),
            Err(e) => return Err(format!("not valid XML: {e}")),
            Ok(_) => {}
        }
        buf.clear();
    }
}

/// An STS error document's `Code: Message`, or `None` if the body is not one.
pub(crate) fn parse_error(xml: &[u8]) -> Option<String> {
    let found = texts(xml, &[&["Error", "Code"], &["Error", "Message"]]).ok()?;
    let code = found[0].clone()?;
    Some(match &found[1] {
        Some(m) => format!("{code}: {m}"),
        None => code,
    })
}

/// The credentials of an `AssumeRoleWithWebIdentityResponse`.
pub(crate) fn parse_response(xml: &[u8]) -> Result<Fetched, String> {
    const C: &str = "Credentials";
    let f = texts(
        xml,
        &[
            &[C, "AccessKeyId"],
            &[C, "SecretAccessKey"],
            &[C, "SessionToken"],
            &[C, "Expiration"],
        ],
    )?;
    let field = |i: usize, name: &str| {
        f[i].as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("no Credentials/{name} in the answer"))
    };
    let (id, secret, token, exp) = (
        field(0, "AccessKeyId")?,
        field(1, "SecretAccessKey")?,
        field(2, "SessionToken")?,
        field(3, "Expiration")?,
    );
    let expires = parse_expiration(&exp)
        .ok_or_else(|| format!("Credentials/Expiration {exp:?} is not an RFC 3339 time"))?;
    Ok(Fetched {
        credentials: Credentials::new(id, secret, Some(token)),
        expires: Some(expires),
    })
}

/// Reads the token file (at every refresh: it rotates).
pub(crate) fn read_token(settings: &WebIdentitySettings) -> Result<String, CredentialsError> {
    let token =
        std::fs::read_to_string(&settings.token_file).map_err(|e| CredentialsError::File {
            variable: "AWS_WEB_IDENTITY_TOKEN_FILE",
            path: settings.token_file.clone(),
            reason: e.to_string(),
        })?;
    if token.trim().is_empty() {
        return Err(CredentialsError::File {
            variable: "AWS_WEB_IDENTITY_TOKEN_FILE",
            path: settings.token_file.clone(),
            reason: "the file is empty".into(),
        });
    }
    Ok(token)
}

/// Maps an STS answer to credentials or an error.
pub(crate) fn answer(url: &str, status: u16, body: &[u8]) -> Result<Fetched, CredentialsError> {
    if !(200..300).contains(&status) {
        return Err(CredentialsError::Refused {
            source: SourceKind::WebIdentity,
            url: url.to_owned(),
            status,
            detail: parse_error(body).unwrap_or_else(|| "no STS error document".into()),
        });
    }
    parse_response(body).map_err(|problem| CredentialsError::BadAnswer {
        source: SourceKind::WebIdentity,
        url: url.to_owned(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented shape of the answer (AWS STS API reference).
    const OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:parparchik</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/parparchik/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn parses_the_documented_answer() {
        let f = parse_response(OK.as_bytes()).unwrap();
        assert_eq!(f.credentials.access_key_id(), "ASgeIAIOSFODNN7EXAMPLE");
        assert_eq!(
            f.credentials.session_token(),
            Some("AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE")
        );
        assert_eq!(
            f.expires,
            Some(time::macros::datetime!(2014-10-24 23:00:23 UTC))
        );
    }

    #[test]
    fn errors_and_garbage() {
        let err = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token &amp; signature expired</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(
            parse_error(err.as_bytes()).as_deref(),
            Some("InvalidIdentityToken: Token & signature expired")
        );
        let e = answer("http://sts", 400, err.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "web-identity credentials: http://sts answered 400: InvalidIdentityToken: Token & signature expired"
        );
        assert!(parse_response(b"<x/>").unwrap_err().contains("AccessKeyId"));
        assert!(parse_response(b"<<<").is_err());
        let no_exp = OK.replace(
            "<Expiration>2014-10-24T23:00:23Z</Expiration>",
            "<Expiration>soon</Expiration>",
        );
        assert!(
            parse_response(no_exp.as_bytes())
                .unwrap_err()
                .contains("soon")
        );
    }

    #[test]
    fn settings_and_request() {
        let vars = |k: &str| match k {
            "AWS_WEB_IDENTITY_TOKEN_FILE" => Some("/var/run/secrets/token".to_owned()),
            "AWS_ROLE_ARN" => Some("arn:aws:iam::123456789012:role/parparchik".to_owned()),
            _ => None,
        };
        let s = WebIdentitySettings::from_lookup(vars, "eu-west-1", 42)
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(s.session_name, "parparchik-42");
        assert_eq!(
            s.request_body("a.b+c/d\n"),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fparparchik&RoleSessionName=parparchik-42&WebIdentityToken=a.b%2Bc%2Fd"
        );
        let sts = |k: &str| match k {
            "AWS_ENDPOINT_URL_STS" => Some("http://127.0.0.1:9000/".to_owned()),
            "AWS_ROLE_SESSION_NAME" => Some("me".to_owned()),
            other => vars(other),
        };
        let s = WebIdentitySettings::from_lookup(sts, "eu-west-1", 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.session_name.as_str()),
            ("http://127.0.0.1:9000", "me")
        );
        assert!(
            WebIdentitySettings::from_lookup(|_| None, "r", 1)
                .unwrap()
                .is_none()
        );
        let half = |k: &str| (k == "AWS_ROLE_ARN").then(|| "arn".to_owned());
        assert!(WebIdentitySettings::from_lookup(half, "r", 1).is_err());
    }
}
