//! RFC 3161 time-stamp protocol: the request over a checkpoint's bytes, and verification of
//! the token a TSA answers with. DER, CMS SignedData and X.509 are read by RustCrypto's
//! `der`, `cms` and `x509-cert`; signatures are checked with *ring* (RSA PKCS #1 v1.5 with
//! SHA-256/384/512, ECDSA P-256/SHA-256 and P-384/SHA-384).
//!
//! What is checked, in order: the status; that the token is SignedData over a TSTInfo whose
//! message imprint is SHA-256 of exactly the checkpoint bytes (and echoes the nonce, when
//! given); the signed `contentType` and `messageDigest` attributes; the ESS
//! signing-certificate attribute (v1 or v2) naming the certificate that signed; the
//! signature over the signed attributes. Given CA certificates, also: a chain from the
//! signing certificate through the token's (or the file's) intermediates to one of them,
//! every link's signature, CA flags on issuers, every certificate valid at the token's
//! `genTime`, and the signer's extended key usage critical and exactly `timeStamping`.

use base64::Engine as _;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Any, Int, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// Why a timestamp token does not verify.
#[derive(Debug, thiserror::Error)]
pub enum TspError {
    /// The bytes are not well-formed DER of the expected structure.
    #[error("malformed timestamp response: {0}")]
    Der(#[from] der::Error),
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

/// Object identifiers used here.
mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
    pub const RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const SHA256_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    pub const SHA384_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
    pub const SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
    pub const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    pub const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    pub const SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
    pub const SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
    pub const TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
}

/// `TimeStampReq` (RFC 3161 §2.4.1), without policy or extensions.
#[derive(Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    nonce: der::asn1::Uint,
    cert_req: bool,
}

/// `MessageImprint`.
#[derive(Clone, Debug, Sequence)]
pub struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// `TimeStampResp` (RFC 3161 §2.4.2).
#[derive(Sequence)]
struct TimeStampResp<'a> {
    status: PkiStatusInfo<'a>,
    time_stamp_token: Option<ContentInfo>,
}

/// `PKIStatusInfo`.
#[derive(Sequence)]
struct PkiStatusInfo<'a> {
    status: u64,
    status_string: Option<Vec<der::asn1::Utf8StringRef<'a>>>,
    fail_info: Option<der::asn1::BitString>,
}

/// `TSTInfo` (RFC 3161 §2.4.2). `genTime` is kept raw: TSAs may add fractions of a second,
/// which DER's `GeneralizedTime` type does not take.
#[derive(Clone, Debug, Sequence)]
pub struct TstInfo {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    accuracy: Option<Accuracy>,
    #[asn1(default = "no")]
    ordering: bool,
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<Any>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<x509_cert::ext::Extensions>,
}

fn no() -> bool {
    false
}

/// `Accuracy`.
#[derive(Clone, Debug, Sequence)]
struct Accuracy {
    seconds: Option<u64>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<u16>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<u16>,
}

/// ESS `SigningCertificate` (RFC 2634) and `SigningCertificateV2` (RFC 5035).
#[derive(Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    policies: Option<Any>,
}

#[derive(Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    issuer_serial: Option<IssuerSerial>,
}

#[derive(Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    policies: Option<Any>,
}

#[derive(Sequence)]
struct EssCertIdV2 {
    /// SHA-256 when absent (the DER encoding of the default).
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    issuer_serial: Option<IssuerSerial>,
}

#[derive(Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: Int,
}

/// A TimeStampReq for the SHA-256 of `data`, asking for the TSA's certificate.
pub fn request(data: &[u8], nonce: u64) -> Vec<u8> {
    let req = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: oid::SHA256,
                parameters: Some(Any::null()),
            },
            // 32 bytes always fit an OCTET STRING.
            hashed_message: OctetString::new(Sha256::digest(data).to_vec())
                .unwrap_or_else(|_| unreachable!("a digest is a valid OCTET STRING")),
        },
        nonce: der::asn1::Uint::new(&nonce.to_be_bytes())
            .unwrap_or_else(|_| unreachable!("eight bytes are a valid INTEGER")),
        cert_req: true,
    };
    req.to_der()
        .unwrap_or_else(|_| unreachable!("a request of fixed shape encodes"))
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

/// Parses a DER certificate (for callers that only need to know it is one).
pub fn parse_cert(raw: &[u8]) -> Result<Certificate, TspError> {
    Ok(Certificate::from_der(raw)?)
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

/// The certificates a response carries (DER).
pub fn certificates(response: &[u8]) -> Result<Vec<Vec<u8>>, TspError> {
    let token = Token::parse(response)?;
    token
        .certs
        .iter()
        .map(|c| c.to_der().map_err(TspError::from))
        .collect()
}

/// A parsed token: the signed data, its TSTInfo and the certificates it carries.
struct Token {
    tst_der: Vec<u8>,
    tst: TstInfo,
    signer: SignerInfo,
    /// The signer's signed attributes exactly as received, re-tagged as the SET they were
    /// signed as: `der` sorts a decoded SET, so re-encoding could change the bytes.
    signed_attrs: Option<Vec<u8>>,
    certs: Vec<Certificate>,
}

impl Token {
    fn parse(response: &[u8]) -> Result<Token, TspError> {
        let resp = TimeStampResp::from_der(response)?;
        if resp.status.status > 1 {
            let text = resp
                .status
                .status_string
                .as_ref()
                .and_then(|s| s.first())
                .map(|t| format!(": {}", t.as_str()))
                .unwrap_or_default();
            return Err(TspError::Refused {
                status: resp.status.status,
                text,
            });
        }
        let info = resp
            .time_stamp_token
            .ok_or_else(|| invalid("the response holds no timestamp token"))?;
        if info.content_type != oid::SIGNED_DATA {
            return Err(invalid("the token is not CMS SignedData"));
        }
        let signed_attrs = raw_signed_attrs(info.content.value())?;
        let sd: SignedData = info.content.decode_as()?;
        if sd.encap_content_info.econtent_type != oid::TST_INFO {
            return Err(invalid("the token does not hold a TSTInfo"));
        }
        let econtent = sd
            .encap_content_info
            .econtent
            .ok_or_else(|| invalid("the token's TSTInfo is missing (detached content)"))?;
        let tst_der = econtent.decode_as::<OctetString>()?.into_bytes().into_vec();
        let tst = TstInfo::from_der(&tst_der)?;
        let certs = sd
            .certificates
            .map(|set| {
                set.0
                    .into_vec()
                    .into_iter()
                    .filter_map(|c| match c {
                        CertificateChoices::Certificate(c) => Some(c),
                        CertificateChoices::Other(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut signers = sd.signer_infos.0.into_vec().into_iter();
        let signer = signers
            .next()
            .ok_or_else(|| invalid("the token has no signer"))?;
        if signers.next().is_some() {
            return Err(invalid("the token has more than one signer"));
        }
        Ok(Token {
            tst_der,
            tst,
            signer,
            signed_attrs,
            certs,
        })
    }
}

/// The TLVs inside `value`, in order, with their raw encodings.
fn elements(value: &[u8]) -> Result<Vec<der::asn1::AnyRef<'_>>, TspError> {
    let mut r = der::SliceReader::new(value)?;
    let mut out = Vec::new();
    while !der::Reader::is_finished(&r) {
        out.push(der::asn1::AnyRef::decode(&mut r)?);
    }
    Ok(out)
}

/// The first signer's signed attributes from the SignedData body `sd`, as received, with
/// their `[0]` tag turned into the SET tag they were signed under.
fn raw_signed_attrs(sd: &[u8]) -> Result<Option<Vec<u8>>, TspError> {
    let Some(signer_infos) = elements(sd)?.pop() else {
        return Ok(None);
    };
    let Some(first) = elements(signer_infos.value())?.into_iter().next() else {
        return Ok(None);
    };
    let attrs = elements(first.value())?.into_iter().find(|e| {
        e.tag()
            == Tag::ContextSpecific {
                constructed: true,
                number: der::TagNumber(0),
            }
    });
    Ok(match attrs {
        Some(a) => {
            let mut raw = a.to_der()?;
            raw[0] = 0x31;
            Some(raw)
        }
        None => None,
    })
}

/// The text of a DER GeneralizedTime as RFC 3339 UTC (fractions of a second dropped).
fn generalized_time(s: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(s).ok()?;
    let digits = s.strip_suffix('Z')?;
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.len() != 14
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let t = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &whole[..4],
        &whole[4..6],
        &whole[6..8],
        &whole[8..10],
        &whole[10..12],
        &whole[12..14]
    );
    // Month 13 or 25 o'clock are not times.
    chrono::DateTime::parse_from_rfc3339(&t).ok().map(|_| t)
}

/// Seconds since the epoch of an RFC 3339 time made by [`generalized_time`].
fn epoch_secs(rfc3339: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    u64::try_from(t.timestamp()).ok()
}

/// Verifies `response` as a timestamp over `data`. With `ca` (DER certificates), the signing
/// certificate must chain to one of them (through intermediates in the token or in `ca`),
/// every certificate on the way must be valid at the token's time, and the signer must be
/// for time stamping only. With `nonce`, the token must echo it (checked when the token is
/// first received).
pub fn verify(
    response: &[u8],
    data: &[u8],
    ca: Option<&[Vec<u8>]>,
    nonce: Option<u64>,
) -> Result<Stamp, TspError> {
    let token = Token::parse(response)?;
    let tst = &token.tst;
    if tst.message_imprint.hash_algorithm.oid != oid::SHA256 {
        return Err(invalid("the token's message imprint is not SHA-256"));
    }
    if tst.message_imprint.hashed_message.as_bytes() != Sha256::digest(data).as_slice() {
        return Err(invalid(
            "the token is over other bytes: its message imprint is not SHA-256 of the checkpoint",
        ));
    }
    if tst.gen_time.tag() != Tag::GeneralizedTime {
        return Err(invalid("the token's genTime is not a GeneralizedTime"));
    }
    let time = generalized_time(tst.gen_time.value())
        .ok_or_else(|| invalid("the token's genTime is malformed"))?;
    if let Some(want) = nonce {
        let echoed = tst.nonce.as_ref().map(|n| unsigned(n.as_bytes()));
        if echoed != Some(unsigned(&want.to_be_bytes())) {
            return Err(invalid("the token does not echo the request's nonce"));
        }
    }
    let signer = signing_certificate(&token)?;
    check_signed_attributes(&token, signer)?;
    let chain_checked = match ca {
        None => false,
        Some(cas) => {
            let at =
                epoch_secs(&time).ok_or_else(|| invalid("the token's genTime is malformed"))?;
            check_chain(signer, &token.certs, cas, at)?;
            true
        }
    };
    Ok(Stamp {
        time,
        serial: crate::ledger::leaf::hex(unsigned(tst.serial_number.as_bytes())),
        chain_checked,
    })
}

/// An INTEGER's bytes without the sign-padding zero.
fn unsigned(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

/// The certificate the signer names (issuer and serial, or subject key identifier).
fn signing_certificate(token: &Token) -> Result<&Certificate, TspError> {
    let found = token.certs.iter().find(|c| match &token.signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(iasn) => {
            c.tbs_certificate().issuer() == &iasn.issuer
                && c.tbs_certificate().serial_number().as_bytes() == iasn.serial_number.as_bytes()
        }
        SignerIdentifier::SubjectKeyIdentifier(skid) => c
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, k)| k.0.as_bytes() == skid.0.as_bytes()),
    });
    found.ok_or_else(|| invalid("the token does not carry its signing certificate"))
}

/// The signed attributes: content type, message digest and the ESS binding to `signer`;
/// then the signature over them.
fn check_signed_attributes(token: &Token, signer: &Certificate) -> Result<(), TspError> {
    let si = &token.signer;
    if si.digest_alg.oid != oid::SHA256 {
        return Err(invalid("the signer's digest is not SHA-256"));
    }
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| invalid("the token has no signed attributes"))?;
    let value = |oid: ObjectIdentifier| {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
    };
    let content_type = value(oid::CONTENT_TYPE)
        .map(|v| v.decode_as::<ObjectIdentifier>())
        .transpose()?;
    if content_type != Some(oid::TST_INFO) {
        return Err(invalid(
            "the signed content type is not TSTInfo (the token was altered)",
        ));
    }
    let digest = value(oid::MESSAGE_DIGEST)
        .map(|v| v.decode_as::<OctetString>())
        .transpose()?;
    if digest.as_ref().map(OctetString::as_bytes) != Some(Sha256::digest(&token.tst_der).as_slice())
    {
        return Err(invalid(
            "the signed messageDigest does not match the TSTInfo (the token was altered)",
        ));
    }
    check_ess(
        value(oid::SIGNING_CERTIFICATE_V2),
        value(oid::SIGNING_CERTIFICATE),
        signer,
    )?;
    // The signature covers the attributes as a SET (RFC 5652 §5.4), the bytes received.
    let signed = token
        .signed_attrs
        .as_deref()
        .ok_or_else(|| invalid("the token has no signed attributes"))?;
    if !check_signature(
        signer,
        &si.signature_algorithm.oid,
        Some(&si.digest_alg.oid),
        signed,
        si.signature.as_bytes(),
    ) {
        return Err(invalid(
            "the token's signature does not verify with its signing certificate",
        ));
    }
    Ok(())
}

/// ESS: the first certificate the signing-certificate attribute names must be `signer`
/// (by hash, and by issuer and serial when given), so another certificate for the same key
/// cannot be passed off as the signer.
fn check_ess(v2: Option<&Any>, v1: Option<&Any>, signer: &Certificate) -> Result<(), TspError> {
    let der = signer.to_der()?;
    let (hash, named, issuer_serial) =
        if let Some(v2) = v2 {
            let sc: SigningCertificateV2 = v2.decode_as()?;
            let first = sc.certs.into_iter().next().ok_or_else(|| {
                invalid("the ESS signing-certificate attribute names no certificate")
            })?;
            let alg = first.hash_algorithm.map_or(oid::SHA256, |a| a.oid);
            let hash = match alg {
                a if a == oid::SHA256 => Sha256::digest(&der).to_vec(),
                a if a == oid::SHA384 => Sha384::digest(&der).to_vec(),
                a if a == oid::SHA512 => Sha512::digest(&der).to_vec(),
                a => {
                    return Err(invalid(format!(
                        "the ESS certificate hash {a} is not supported"
                    )));
                }
            };
            (hash, first.cert_hash, first.issuer_serial)
        } else if let Some(v1) = v1 {
            let sc: SigningCertificate = v1.decode_as()?;
            let first = sc.certs.into_iter().next().ok_or_else(|| {
                invalid("the ESS signing-certificate attribute names no certificate")
            })?;
            let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
            (sha1.as_ref().to_vec(), first.cert_hash, first.issuer_serial)
        } else {
            return Err(invalid(
                "the token has no ESS signing-certificate attribute binding it to its certificate",
            ));
        };
    if named.as_bytes() != hash.as_slice() {
        return Err(invalid(
            "the ESS signing-certificate attribute names another certificate than the one that signed",
        ));
    }
    if let Some(is) = issuer_serial {
        let tbs = signer.tbs_certificate();
        let issuer_ok = is
            .issuer
            .iter()
            .any(|g| matches!(g, GeneralName::DirectoryName(n) if n == tbs.issuer()));
        if !issuer_ok
            || unsigned(is.serial_number.as_bytes()) != unsigned(tbs.serial_number().as_bytes())
        {
            return Err(invalid(
                "the ESS signing-certificate attribute names another issuer or serial than the signer's",
            ));
        }
    }
    Ok(())
}

/// Checks `signature` over `msg` with `cert`'s key. `alg` is the signature algorithm; when
/// it is the bare key algorithm (`rsaEncryption`, as CMS signers often say), `digest` picks
/// the hash.
fn check_signature(
    cert: &Certificate,
    alg: &ObjectIdentifier,
    digest: Option<&ObjectIdentifier>,
    msg: &[u8],
    signature: &[u8],
) -> bool {
    use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
    let spki = cert.tbs_certificate().subject_public_key_info();
    let Some(key) = spki.subject_public_key.as_bytes() else {
        return false;
    };
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let digest = if *alg == oid::RSA { digest } else { None };
    let scheme: &'static dyn VerificationAlgorithm = match (spki.algorithm.oid, *alg, digest) {
        (k, a, _) if k == oid::RSA && a == oid::SHA256_RSA => &sig::RSA_PKCS1_2048_8192_SHA256,
        (k, a, _) if k == oid::RSA && a == oid::SHA384_RSA => &sig::RSA_PKCS1_2048_8192_SHA384,
        (k, a, _) if k == oid::RSA && a == oid::SHA512_RSA => &sig::RSA_PKCS1_2048_8192_SHA512,
        (k, _, Some(d)) if k == oid::RSA && *d == oid::SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        (k, _, Some(d)) if k == oid::RSA && *d == oid::SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        (k, _, Some(d)) if k == oid::RSA && *d == oid::SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        (k, a, _)
            if k == oid::EC_PUBLIC_KEY && a == oid::ECDSA_SHA256 && curve == Some(oid::P256) =>
        {
            &sig::ECDSA_P256_SHA256_ASN1
        }
        (k, a, _)
            if k == oid::EC_PUBLIC_KEY && a == oid::ECDSA_SHA384 && curve == Some(oid::P384) =>
        {
            &sig::ECDSA_P384_SHA384_ASN1
        }
        _ => return false,
    };
    UnparsedPublicKey::new(scheme, key)
        .verify(msg, signature)
        .is_ok()
}

/// Whether `cert` is valid at `at` (seconds since the epoch).
fn valid_at(cert: &Certificate, at: u64) -> bool {
    let v = cert.tbs_certificate().validity();
    v.not_before.to_unix_duration().as_secs() <= at
        && at <= v.not_after.to_unix_duration().as_secs()
}

/// The subject's common name, for messages.
fn who(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

/// Longest chain followed from the signer to a trusted certificate.
const MAX_CHAIN: usize = 8;

/// A path from `signer` to one of `trusted` through `intermediates` (the token's and the
/// trusted file's certificates), every link signed by the next, every issuer a CA, every
/// certificate valid at `at`; and the signer for time stamping only.
fn check_chain(
    signer: &Certificate,
    carried: &[Certificate],
    trusted: &[Vec<u8>],
    at: u64,
) -> Result<(), TspError> {
    // A certificate of the file that does not parse cannot vouch for anything; the others
    // still can (the old reader skipped such certificates too).
    let anchors: Vec<Certificate> = trusted
        .iter()
        .filter_map(|c| match Certificate::from_der(c) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("a CA certificate given does not parse ({e}); it is ignored");
                None
            }
        })
        .collect();
    match signer
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()?
    {
        None => {
            return Err(invalid(
                "the signing certificate is not for time stamping (no extended key usage)",
            ));
        }
        Some((false, _)) => {
            return Err(invalid(
                "the signing certificate's extended key usage is not critical (RFC 3161 §2.3)",
            ));
        }
        Some((true, eku)) if eku.0 != [oid::TIME_STAMPING] => {
            return Err(invalid(
                "the signing certificate is not for time stamping only (its extended key usage must be exactly timeStamping)",
            ));
        }
        Some(_) => {}
    }
    let mut cert = signer;
    for _ in 0..MAX_CHAIN {
        if !valid_at(cert, at) {
            return Err(invalid(format!(
                "the certificate {} was not valid at the token's time",
                who(cert)
            )));
        }
        let issued_by = |ca: &&Certificate| {
            ca.tbs_certificate().subject() == cert.tbs_certificate().issuer()
                && cert.tbs_certificate().to_der().is_ok_and(|tbs| {
                    check_signature(
                        ca,
                        &cert.signature_algorithm().oid,
                        None,
                        &tbs,
                        cert.signature().raw_bytes(),
                    )
                })
        };
        if let Some(anchor) = anchors.iter().find(issued_by) {
            // A certificate of the file vouches only as a CA (a TLS leaf pasted into it
            // must not issue time-stamping signers), unless it is the signer itself,
            // pinned self-signed.
            if anchor != signer && !is_ca(anchor)? {
                return Err(invalid(format!(
                    "{} in the CA file signed a certificate but is not a CA",
                    who(anchor)
                )));
            }
            return if valid_at(anchor, at) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "the CA certificate {} was not valid at the token's time",
                    who(anchor)
                )))
            };
        }
        let next = carried.iter().chain(&anchors).find(issued_by).ok_or_else(|| {
            invalid(format!(
                "the signing certificate was not issued by the CA given: no issuer found for {}",
                who(cert)
            ))
        })?;
        if !is_ca(next)? {
            return Err(invalid(format!(
                "{} signed a certificate but is not a CA",
                who(next)
            )));
        }
        cert = next;
    }
    Err(invalid(
        "the signing certificate was not issued by the CA given (the chain is too long)",
    ))
}

/// Whether `cert` may issue certificates: basic constraints say CA, and a key usage, when
/// present, allows certificate signing.
fn is_ca(cert: &Certificate) -> Result<bool, TspError> {
    let tbs = cert.tbs_certificate();
    let ca = tbs
        .get_extension::<BasicConstraints>()?
        .is_some_and(|(_, bc)| bc.ca);
    let usage_ok = tbs
        .get_extension::<KeyUsage>()?
        .is_none_or(|(_, ku)| ku.key_cert_sign());
    Ok(ca && usage_ok)
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
        let req = TimeStampReq::from_der(&r).unwrap();
        assert_eq!(req.version, 1);
        assert!(req.cert_req);
        assert_eq!(unsigned(req.nonce.as_bytes()), [7]);
        assert_eq!(
            req.message_imprint.hashed_message.as_bytes(),
            Sha256::digest(b"checkpoint").as_slice()
        );
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
        assert!(generalized_time(b"20261302005000Z").is_none());
    }
}
