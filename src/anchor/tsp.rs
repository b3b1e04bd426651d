//! RFC 3161 time-stamp protocol: the request over a checkpoint's bytes, and verification of
//! the token a TSA answers with (CMS SignedData over a TSTInfo), with *ring* for the RSA or
//! ECDSA P-256 signatures. What is checked: the status, that the token's message imprint is
//! SHA-256 of exactly the checkpoint bytes, the signed `messageDigest` attribute against the
//! TSTInfo, the signer's signature over the signed attributes, and, given CA certificates,
//! that the signing certificate was issued by one of them for time stamping.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::der::{self, DerError, Reader, Tlv, encode, oid, tag};

/// Why a timestamp token does not verify.
#[derive(Debug, thiserror::Error)]
pub enum TspError {
    /// The bytes are not a well-formed response.
    #[error("{0}")]
    Der(#[from] DerError),
    /// The TSA refused the request.
    #[error("the TSA refused the request (status {status}{text})")]
    Refused {
        /// PKIStatus.
        status: u64,
        /// Its status text, if any.
        text: String,
    },
    /// A check failed.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(s: impl Into<String>) -> TspError {
    TspError::Invalid(s.into())
}

/// A TimeStampReq for the SHA-256 of `data`, asking for the TSA's certificate.
pub fn request(data: &[u8], nonce: u64) -> Vec<u8> {
    let digest = Sha256::digest(data);
    let alg = encode(
        tag::SEQUENCE,
        &[encode(tag::OID, oid::SHA256), encode(tag::NULL, &[])].concat(),
    );
    let imprint = encode(
        tag::SEQUENCE,
        &[alg, encode(tag::OCTET_STRING, &digest)].concat(),
    );
    let body = [
        der::integer(&[1]),
        imprint,
        der::integer(&nonce.to_be_bytes()),
        encode(tag::BOOLEAN, &[0xff]),
    ]
    .concat();
    encode(tag::SEQUENCE, &body)
}

/// The parts of an X.509 certificate used here.
#[derive(Debug, Clone)]
pub struct Cert<'a> {
    tbs: &'a [u8],
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    key_alg: &'a [u8],
    key_curve: Option<&'a [u8]>,
    key: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
}

fn alg_oid<'a>(t: Tlv<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), DerError> {
    let mut r = t.expect(tag::SEQUENCE, "algorithm")?.inner();
    let o = r.expect(tag::OID, "algorithm oid")?.value;
    let param = r.optional(tag::OID)?.map(|p| p.value);
    Ok((o, param))
}

fn bit_string(t: Tlv<'_>) -> Result<&[u8], DerError> {
    match t.expect(tag::BIT_STRING, "bit string")?.value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(DerError("bit string with unused bits".into())),
    }
}

/// Parses a DER certificate.
pub fn parse_cert(raw: &[u8]) -> Result<Cert<'_>, DerError> {
    let mut c = Reader::new(raw)
        .expect(tag::SEQUENCE, "certificate")?
        .inner();
    let tbs = c.expect(tag::SEQUENCE, "tbsCertificate")?;
    let (sig_alg, _) = alg_oid(c.read()?)?;
    let signature = bit_string(c.read()?)?;
    let mut t = tbs.inner();
    t.optional(tag::CTX0)?;
    let serial = t.expect(tag::INTEGER, "serial")?.value;
    t.expect(tag::SEQUENCE, "signature algorithm")?;
    let issuer = t.expect(tag::SEQUENCE, "issuer")?.raw;
    t.expect(tag::SEQUENCE, "validity")?;
    let subject = t.expect(tag::SEQUENCE, "subject")?.raw;
    let mut spki = t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?.inner();
    let (key_alg, key_curve) = alg_oid(spki.read()?)?;
    let key = bit_string(spki.read()?)?;
    Ok(Cert {
        tbs: tbs.raw,
        serial,
        issuer,
        subject,
        key_alg,
        key_curve,
        key,
        sig_alg,
        signature,
    })
}

/// Checks `signature` over `msg` with `cert`'s key and the SHA-256 algorithm `sig_alg`.
fn check_signature(cert: &Cert<'_>, sig_alg: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    if cert.key_alg == oid::RSA && (sig_alg == oid::SHA256_RSA || sig_alg == oid::RSA) {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, cert.key)
            .verify(msg, signature)
            .is_ok()
    } else if cert.key_alg == oid::EC_PUBLIC_KEY
        && cert.key_curve == Some(oid::P256)
        && sig_alg == oid::ECDSA_SHA256
    {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, cert.key)
            .verify(msg, signature)
            .is_ok()
    } else {
        false
    }
}

/// Certificates from PEM text.
pub fn pem_certs(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + 27..];
        let Some(end) = body.find("-----END CERTIFICATE-----") else {
            break;
        };
        let b64: String = body[..end].split_whitespace().collect();
        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(d);
        }
        rest = &body[end..];
    }
    out
}

/// PEM text of DER certificates.
pub fn to_pem(certs: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for c in certs {
        s.push_str("-----BEGIN CERTIFICATE-----\n");
        let b = base64::engine::general_purpose::STANDARD.encode(c);
        for chunk in b.as_bytes().chunks(64) {
            s.push_str(&String::from_utf8_lossy(chunk));
            s.push('\n');
        }
        s.push_str("-----END CERTIFICATE-----\n");
    }
    s
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stamp {
    /// The TSA's time (RFC 3339 UTC).
    pub time: String,
    /// The token's serial number (hex).
    pub serial: String,
    /// Whether the signing certificate was checked against CA certificates.
    pub chain_checked: bool,
}

/// The certificates a response carries (DER), signer first when it can be told.
pub fn certificates(response: &[u8]) -> Result<Vec<Vec<u8>>, TspError> {
    let parts = Parts::parse(response)?;
    Ok(parts.certs.iter().map(|c| c.to_vec()).collect())
}

struct Parts<'a> {
    tst_info: &'a [u8],
    certs: Vec<&'a [u8]>,
    signer: Tlv<'a>,
}

impl<'a> Parts<'a> {
    fn parse(response: &'a [u8]) -> Result<Parts<'a>, TspError> {
        let mut resp = Reader::new(response)
            .expect(tag::SEQUENCE, "TimeStampResp")?
            .inner();
        let mut status = resp.expect(tag::SEQUENCE, "PKIStatusInfo")?.inner();
        let code = status.expect(tag::INTEGER, "status")?.value;
        let code = code.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        if code > 1 {
            let text = status
                .optional(tag::SEQUENCE)?
                .and_then(|s| s.inner().read().ok())
                .map(|t| format!(": {}", String::from_utf8_lossy(t.value)))
                .unwrap_or_default();
            return Err(TspError::Refused { status: code, text });
        }
        let mut ci = resp
            .expect(tag::SEQUENCE, "timeStampToken")
            .map_err(|_| invalid("the response holds no timestamp token"))?
            .inner();
        if ci.expect(tag::OID, "contentType")?.value != oid::SIGNED_DATA {
            return Err(invalid("the token is not CMS SignedData"));
        }
        let mut sd = ci
            .expect(tag::CTX0, "content")?
            .inner()
            .expect(tag::SEQUENCE, "SignedData")?
            .inner();
        sd.expect(tag::INTEGER, "version")?;
        sd.expect(tag::SET, "digestAlgorithms")?;
        let mut encap = sd.expect(tag::SEQUENCE, "encapContentInfo")?.inner();
        if encap.expect(tag::OID, "eContentType")?.value != oid::TST_INFO {
            return Err(invalid("the token does not hold a TSTInfo"));
        }
        let tst_info = encap
            .expect(tag::CTX0, "eContent")?
            .inner()
            .expect(tag::OCTET_STRING, "eContent")?
            .value;
        let mut certs = Vec::new();
        if let Some(set) = sd.optional(tag::CTX0)? {
            let mut r = set.inner();
            while !r.is_empty() {
                certs.push(r.read()?.raw);
            }
        }
        sd.optional(tag::CTX1)?;
        let mut signers = sd.expect(tag::SET, "signerInfos")?.inner();
        let signer = signers.expect(tag::SEQUENCE, "SignerInfo")?;
        Ok(Parts {
            tst_info,
            certs,
            signer,
        })
    }
}

fn generalized_time(s: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(s).ok()?;
    let digits = s.strip_suffix('Z')?;
    let (whole, _fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &whole[..4],
        &whole[4..6],
        &whole[6..8],
        &whole[8..10],
        &whole[10..12],
        &whole[12..14]
    ))
}

/// Verifies `response` as a timestamp over `data`. With `ca` (DER certificates), the signing
/// certificate must be issued by one of them and allowed to stamp time. With `nonce`, the
/// token must echo it (checked when the token is first received).
pub fn verify(
    response: &[u8],
    data: &[u8],
    ca: Option<&[Vec<u8>]>,
    nonce: Option<u64>,
) -> Result<Stamp, TspError> {
    let parts = Parts::parse(response)?;
    // TSTInfo: the imprint must be SHA-256 of exactly these bytes.
    let mut tst = Reader::new(parts.tst_info)
        .expect(tag::SEQUENCE, "TSTInfo")?
        .inner();
    tst.expect(tag::INTEGER, "version")?;
    tst.expect(tag::OID, "policy")?;
    let mut imprint = tst.expect(tag::SEQUENCE, "messageImprint")?.inner();
    let (alg, _) = alg_oid(imprint.read()?)?;
    let hashed = imprint.expect(tag::OCTET_STRING, "hashedMessage")?.value;
    if alg != oid::SHA256 {
        return Err(invalid("the token's message imprint is not SHA-256"));
    }
    if hashed != Sha256::digest(data).as_slice() {
        return Err(invalid(
            "the token is over other bytes: its message imprint is not SHA-256 of the checkpoint",
        ));
    }
    let serial = tst.expect(tag::INTEGER, "serialNumber")?.value;
    let time = generalized_time(tst.expect(tag::GENERALIZED_TIME, "genTime")?.value)
        .ok_or_else(|| invalid("the token's genTime is malformed"))?;
    if let Some(want) = nonce {
        let mut found = None;
        while !tst.is_empty() {
            let t = tst.read()?;
            if t.tag == tag::INTEGER {
                found = Some(t.value.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)));
            }
        }
        if found != Some(want) {
            return Err(invalid("the token does not echo the request's nonce"));
        }
    }

    // SignerInfo: messageDigest over the TSTInfo, signature over the signed attributes.
    let mut si = parts.signer.inner();
    si.expect(tag::INTEGER, "version")?;
    let sid = si.expect(tag::SEQUENCE, "issuerAndSerialNumber")?;
    let mut sid_r = sid.inner();
    let sid_issuer = sid_r.expect(tag::SEQUENCE, "issuer")?.raw;
    let sid_serial = sid_r.expect(tag::INTEGER, "serial")?.value;
    let (digest_alg, _) = alg_oid(si.read()?)?;
    if digest_alg != oid::SHA256 {
        return Err(invalid("the signer's digest is not SHA-256"));
    }
    let attrs = si.expect(tag::CTX0, "signedAttrs")?;
    let mut digest_ok = false;
    let mut ar = attrs.inner();
    while !ar.is_empty() {
        let mut a = ar.expect(tag::SEQUENCE, "attribute")?.inner();
        if a.expect(tag::OID, "attribute type")?.value == oid::MESSAGE_DIGEST {
            let v = a
                .expect(tag::SET, "attribute values")?
                .inner()
                .expect(tag::OCTET_STRING, "messageDigest")?
                .value;
            digest_ok = v == Sha256::digest(parts.tst_info).as_slice();
        }
    }
    if !digest_ok {
        return Err(invalid(
            "the signed messageDigest does not match the TSTInfo (the token was altered)",
        ));
    }
    let (sig_alg, _) = alg_oid(si.read()?)?;
    let signature = si.expect(tag::OCTET_STRING, "signature")?.value;
    let signer = parts
        .certs
        .iter()
        .filter_map(|c| parse_cert(c).ok())
        .find(|c| c.serial == sid_serial && c.issuer == sid_issuer)
        .ok_or_else(|| invalid("the token does not carry its signing certificate"))?;
    // The signature covers the attributes encoded as a SET, not as the [0] they are stored in.
    let mut signed = attrs.raw.to_vec();
    signed[0] = tag::SET;
    if !check_signature(&signer, sig_alg, &signed, signature) {
        return Err(invalid(
            "the token's signature does not verify with its signing certificate",
        ));
    }
    let chain_checked = match ca {
        None => false,
        Some(cas) => {
            // Same name is not enough: the CA's key must have signed the certificate.
            let issued = cas.iter().filter_map(|c| parse_cert(c).ok()).any(|ca| {
                ca.subject == signer.issuer
                    && check_signature(&ca, signer.sig_alg, signer.tbs, signer.signature)
            });
            if !issued {
                return Err(invalid(
                    "the signing certificate was not issued by the CA given",
                ));
            }
            let eku = [
                &[tag::OID, oid::TIME_STAMPING.len() as u8][..],
                oid::TIME_STAMPING,
            ]
            .concat();
            if !signer.tbs.windows(eku.len()).any(|w| w == eku.as_slice()) {
                return Err(invalid(
                    "the signing certificate is not for time stamping (no timeStamping EKU)",
                ));
            }
            true
        }
    };
    Ok(Stamp {
        time,
        serial: crate::ledger::leaf::hex(serial),
        chain_checked,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Arbitrary bytes, and DER-looking prefixes, are errors, never panics.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), lead in 0usize..4) {
            let mut data = [vec![0x30, 0x82, 0x02, 0x00], vec![0x30, 0x81], vec![0x30], vec![]][lead].clone();
            data.extend(bytes);
            prop_assert!(verify(&data, b"x", None, None).is_err());
            let _ = certificates(&data);
            let _ = parse_cert(&data);
        }
    }

    #[test]
    fn requests_are_der_and_garbage_is_refused() {
        let r = request(b"checkpoint", 7);
        let mut top = Reader::new(&r);
        let seq = top.expect(tag::SEQUENCE, "req").unwrap();
        assert!(top.is_empty());
        let mut inner = seq.inner();
        assert_eq!(inner.expect(tag::INTEGER, "v").unwrap().value, &[1]);
        for bytes in [
            &b""[..],
            b"\x30\x03\x02\x01",
            b"not der at all",
            &[0x30, 0x00],
        ] {
            assert!(verify(bytes, b"x", None, None).is_err());
        }
        assert_eq!(
            generalized_time(b"20261202005000Z").as_deref(),
            Some("2026-12-02T00:50:00Z")
        );
        assert_eq!(
            generalized_time(b"20261202005000.123Z").as_deref(),
            Some("2026-12-02T00:50:00Z")
        );
        assert!(generalized_time(b"2026").is_none());
    }
}
