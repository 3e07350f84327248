//! SNS HTTP messages: the string SNS signs, which URLs in a message may be fetched, and
//! the signature check (SignatureVersion 2: RSA PKCS#1 v1.5 with SHA-256, by the key of
//! the certificate at `SigningCertURL`, which must chain to a trusted root and name the
//! host it was fetched from). Pure: the caller fetches the certificate.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use super::parse::SnsMessage;
use crate::config::events::HostPattern;

/// Why an SNS message is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SnsError {
    /// A field the signature covers is missing.
    Missing(&'static str),
    /// Only SignatureVersion 2 (SHA-256) is accepted.
    UnsupportedVersion(String),
    /// A URL that is not `https://<allowed host>/…`.
    UrlNotAllowed { field: &'static str, url: String },
    /// The certificate is not PEM, does not chain to a trusted root, or does not name
    /// the host it came from.
    Certificate(String),
    /// The signature is not base64, or does not match.
    Signature,
}

impl std::fmt::Display for SnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnsError::Missing(field) => write!(f, "SNS message without {field}"),
            SnsError::UnsupportedVersion(v) => write!(
                f,
                "SNS SignatureVersion {v:?} is not accepted; set the topic's SignatureVersion attribute to 2 (SHA-256)"
            ),
            SnsError::UrlNotAllowed { field, url } => write!(
                f,
                "SNS {field} {url:?} is not https on a host allowed by PARPARCHIK_EVENTS_SNS_HOSTS"
            ),
            SnsError::Certificate(why) => write!(f, "SNS signing certificate refused: {why}"),
            SnsError::Signature => f.write_str("SNS message signature does not verify"),
        }
    }
}

impl std::error::Error for SnsError {}

/// Refuses signature versions other than 2, before anything is fetched for them.
pub(crate) fn check_version(m: &SnsMessage) -> Result<(), SnsError> {
    if m.signature_version == "2" {
        Ok(())
    } else {
        Err(SnsError::UnsupportedVersion(m.signature_version.clone()))
    }
}

/// The text SNS signs: `Name\nValue\n` for each signed field, in this order.
pub(crate) fn string_to_sign(m: &SnsMessage) -> Result<String, SnsError> {
    let mut out = String::with_capacity(m.message.len() + 512);
    let mut field = |name: &str, value: &str| {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    };
    let required = |value: &str, name: &'static str| {
        if value.is_empty() {
            Err(SnsError::Missing(name))
        } else {
            Ok(())
        }
    };
    required(&m.message_id, "MessageId")?;
    required(&m.timestamp, "Timestamp")?;
    required(&m.topic_arn, "TopicArn")?;
    field("Message", &m.message);
    field("MessageId", &m.message_id);
    if m.kind == "Notification" {
        if let Some(subject) = &m.subject {
            field("Subject", subject);
        }
    } else {
        let url = m
            .subscribe_url
            .as_deref()
            .ok_or(SnsError::Missing("SubscribeURL"))?;
        field("SubscribeURL", url);
    }
    field("Timestamp", &m.timestamp);
    if m.kind != "Notification" {
        let token = m.token.as_deref().ok_or(SnsError::Missing("Token"))?;
        field("Token", token);
    }
    field("TopicArn", &m.topic_arn);
    field("Type", &m.kind);
    Ok(out)
}

/// `url` if it is `https://` on an allowed host, with no user part and the default port.
pub(crate) fn allowed_url(
    field: &'static str,
    url: &str,
    hosts: &[HostPattern],
) -> Result<reqwest::Url, SnsError> {
    let refused = || SnsError::UrlNotAllowed {
        field,
        url: url.chars().take(200).collect(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refused())?;
    let ok = parsed.scheme() == "https"
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.port().is_none()
        && parsed
            .host_str()
            .is_some_and(|h| hosts.iter().any(|p| p.matches(h)));
    if ok { Ok(parsed) } else { Err(refused()) }
}

/// Verifies `m`'s signature with the certificate `cert_pem` (leaf first, then any
/// intermediates) fetched from `cert_host`, which must chain to `roots` at `now`.
pub(crate) fn verify(
    m: &SnsMessage,
    cert_pem: &[u8],
    cert_host: &str,
    roots: &[TrustAnchor<'_>],
    now: UnixTime,
) -> Result<(), SnsError> {
    use base64::Engine as _;
    check_version(m)?;
    let text = string_to_sign(m)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(m.signature.trim())
        .map_err(|_| SnsError::Signature)?;
    let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SnsError::Certificate(format!("not PEM: {e}")))?;
    let (leaf, intermediates) = certs
        .split_first()
        .ok_or_else(|| SnsError::Certificate("no certificate in the PEM".into()))?;
    let cert = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| SnsError::Certificate(format!("not a certificate: {e}")))?;
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        roots,
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| SnsError::Certificate(format!("does not chain to a trusted root: {e}")))?;
    let name = ServerName::try_from(cert_host)
        .map_err(|_| SnsError::Certificate(format!("bad host {cert_host:?}")))?;
    cert.verify_is_valid_for_subject_name(&name)
        .map_err(|e| SnsError::Certificate(format!("not issued to {cert_host}: {e}")))?;
    cert.verify_signature(
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        text.as_bytes(),
        &signature,
    )
    .map_err(|_| SnsError::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification() -> SnsMessage {
        SnsMessage {
            kind: "Notification".into(),
            message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
            topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic".into(),
            subject: Some("My First Message".into()),
            message: "Hello world!".into(),
            timestamp: "2012-05-02T00:54:06.655Z".into(),
            signature_version: "2".into(),
            signature: String::new(),
            signing_cert_url: "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem".into(),
            ..SnsMessage::default()
        }
    }

    #[test]
    fn string_to_sign_of_a_notification() {
        assert_eq!(
            string_to_sign(&notification()).unwrap(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Subject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        let mut no_subject = notification();
        no_subject.subject = None;
        assert!(!string_to_sign(&no_subject).unwrap().contains("Subject"));
    }

    #[test]
    fn string_to_sign_of_a_subscription_confirmation() {
        let m = SnsMessage {
            kind: "SubscriptionConfirmation".into(),
            token: Some("tok".into()),
            subscribe_url: Some(
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=tok".into(),
            ),
            subject: Some("ignored: not signed for confirmations".into()),
            ..notification()
        };
        assert_eq!(
            string_to_sign(&m).unwrap(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=tok\n\
             Timestamp\n2012-05-02T00:54:06.655Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nSubscriptionConfirmation\n"
        );
        let mut missing = m.clone();
        missing.token = None;
        assert_eq!(string_to_sign(&missing), Err(SnsError::Missing("Token")));
    }

    #[test]
    fn only_https_urls_on_allowed_hosts() {
        let hosts = [HostPattern::parse("sns.*.amazonaws.com").unwrap()];
        assert!(
            allowed_url(
                "SubscribeURL",
                "https://sns.eu-west-1.amazonaws.com/?Action=x",
                &hosts
            )
            .is_ok()
        );
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/",
            "https://sns.eu-west-1.amazonaws.com.evil.example/",
            "https://user@sns.eu-west-1.amazonaws.com/",
            "https://sns.eu-west-1.amazonaws.com:8443/",
            "https://evil.example/sns.eu-west-1.amazonaws.com",
            "not a url",
        ] {
            assert!(allowed_url("SigningCertURL", bad, &hosts).is_err(), "{bad}");
        }
        assert!(
            allowed_url(
                "SigningCertURL",
                "https://sns.eu-west-1.amazonaws.com/",
                &[]
            )
            .is_err()
        );
    }

    /// A throwaway CA and an RSA leaf for `host`, signed SNS-style with the leaf's key
    /// (ring cannot generate RSA keys, so the key is a fixture made with openssl).
    struct Signer {
        ca_der: Vec<u8>,
        leaf_pem: String,
        key: ring::signature::RsaKeyPair,
    }

    const RSA_KEY: &str = include_str!("testdata/sns-test-rsa-key.pem");

    fn signer(host: &str) -> Signer {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key =
            KeyPair::from_pkcs8_pem_and_sign_algo(RSA_KEY, &rcgen::PKCS_RSA_SHA256).unwrap();
        let mut leaf = CertificateParams::new(vec![host.to_owned()]).unwrap();
        leaf.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        Signer {
            ca_der: ca_cert.der().to_vec(),
            leaf_pem: leaf.pem(),
            key: ring::signature::RsaKeyPair::from_pkcs8(&pkcs8_der(RSA_KEY)).unwrap(),
        }
    }

    /// The DER of a PKCS#8 PEM.
    fn pkcs8_der(pem: &str) -> Vec<u8> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        der.secret_pkcs8_der().to_vec()
    }

    impl Signer {
        fn sign(&self, m: &mut SnsMessage) {
            use base64::Engine as _;
            let text = string_to_sign(m).unwrap();
            let mut sig = vec![0; self.key.public().modulus_len()];
            self.key
                .sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    text.as_bytes(),
                    &mut sig,
                )
                .unwrap();
            m.signature = base64::engine::general_purpose::STANDARD.encode(sig);
        }

        fn roots(&self) -> Vec<TrustAnchor<'static>> {
            let der = CertificateDer::from(self.ca_der.clone());
            vec![webpki::anchor_from_trusted_cert(&der).unwrap().to_owned()]
        }
    }

    const HOST: &str = "sns.us-west-2.amazonaws.com";

    #[test]
    fn a_signed_message_verifies_and_any_change_breaks_it() {
        let s = signer(HOST);
        let roots = s.roots();
        let now = UnixTime::now();
        let mut m = notification();
        s.sign(&mut m);
        assert_eq!(verify(&m, s.leaf_pem.as_bytes(), HOST, &roots, now), Ok(()));

        let mut tampered = m.clone();
        tampered.message = "Hello world?".into();
        assert_eq!(
            verify(&tampered, s.leaf_pem.as_bytes(), HOST, &roots, now),
            Err(SnsError::Signature)
        );
        let mut bad = m.clone();
        bad.signature = "not base64!".into();
        assert_eq!(
            verify(&bad, s.leaf_pem.as_bytes(), HOST, &roots, now),
            Err(SnsError::Signature)
        );
        // A subscription confirmation is signed over its own fields.
        let mut c = SnsMessage {
            kind: "SubscriptionConfirmation".into(),
            token: Some("t".into()),
            subscribe_url: Some(format!("https://{HOST}/?Action=ConfirmSubscription")),
            ..notification()
        };
        s.sign(&mut c);
        assert_eq!(verify(&c, s.leaf_pem.as_bytes(), HOST, &roots, now), Ok(()));
        c.token = Some("other".into());
        assert_eq!(
            verify(&c, s.leaf_pem.as_bytes(), HOST, &roots, now),
            Err(SnsError::Signature)
        );
    }

    #[test]
    fn the_certificate_must_chain_to_a_root_and_name_its_host() {
        let s = signer(HOST);
        let mut m = notification();
        s.sign(&mut m);
        let now = UnixTime::now();
        // Not a trusted root (the real set: webpki roots, not this throwaway CA).
        assert!(matches!(
            verify(
                &m,
                s.leaf_pem.as_bytes(),
                HOST,
                webpki_roots::TLS_SERVER_ROOTS,
                now
            ),
            Err(SnsError::Certificate(_))
        ));
        // Fetched from another host than the certificate names.
        assert!(matches!(
            verify(
                &m,
                s.leaf_pem.as_bytes(),
                "sns.eu-west-1.amazonaws.com",
                &s.roots(),
                now
            ),
            Err(SnsError::Certificate(_))
        ));
        // Expired by the time of the check (the leaf is valid until 2100).
        let later = UnixTime::since_unix_epoch(std::time::Duration::from_secs(7_258_118_400));
        assert!(matches!(
            verify(&m, s.leaf_pem.as_bytes(), HOST, &s.roots(), later),
            Err(SnsError::Certificate(_))
        ));
        assert!(matches!(
            verify(&m, b"not a certificate", HOST, &s.roots(), now),
            Err(SnsError::Certificate(_))
        ));
    }

    #[test]
    fn version_1_is_refused() {
        let mut m = notification();
        m.signature_version = "1".into();
        assert!(matches!(
            verify(&m, b"", "sns.us-west-2.amazonaws.com", &[], UnixTime::now()),
            Err(SnsError::UnsupportedVersion(_))
        ));
    }
}
