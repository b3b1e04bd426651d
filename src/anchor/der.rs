//! Just enough DER to build an RFC 3161 request and take a response apart: definite
//! lengths, low tag numbers, no BER. Every read is bounds-checked; malformed input is an
//! error, never a panic.

/// A DER decoding failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub String);

fn bad(what: impl Into<String>) -> DerError {
    DerError(what.into())
}

/// Universal and context tags used here.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE.
    pub const SEQUENCE: u8 = 0x30;
    /// SET.
    pub const SET: u8 = 0x31;
    /// BOOLEAN.
    pub const BOOLEAN: u8 = 0x01;
    /// `[0]` constructed.
    pub const CTX0: u8 = 0xA0;
    /// `[1]` constructed.
    pub const CTX1: u8 = 0xA1;
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole element, header included.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over this element's contents (for constructed types).
    pub fn inner(&self) -> Reader<'a> {
        Reader { data: self.value }
    }

    /// Checks the tag.
    pub fn expect(self, tag: u8, what: &str) -> Result<Self, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(bad(format!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                self.tag
            )))
        }
    }
}

/// A cursor over consecutive DER elements.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let d = self.data;
        let tag = *d.first().ok_or_else(|| bad("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(bad("high tag numbers are not used here"));
        }
        let first = *d.get(1).ok_or_else(|| bad("missing length"))?;
        let (len, header) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return Err(bad("indefinite or oversized length"));
            }
            let bytes = d.get(2..2 + n).ok_or_else(|| bad("truncated length"))?;
            let len = bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, 2 + n)
        };
        let end = header
            .checked_add(len)
            .filter(|e| *e <= d.len())
            .ok_or_else(|| bad("element longer than its container"))?;
        self.data = &d[end..];
        Ok(Tlv {
            tag,
            value: &d[header..end],
            raw: &d[..end],
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, DerError> {
        self.read()?.expect(tag, what)
    }

    /// Reads the next element if it has `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Encodes one element.
pub fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(value);
    out
}

/// Encodes a non-negative INTEGER from big-endian bytes.
pub fn integer(be: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = if trimmed.is_empty() { vec![0] } else { trimmed };
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    encode(tag::INTEGER, &v)
}

/// DER of `1.2.840.113549.1.7.2` and friends, as the content bytes of an OID.
pub mod oid {
    /// id-sha256.
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    /// id-signedData.
    pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    /// id-ct-TSTInfo.
    pub const TST_INFO: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
    ];
    /// id-messageDigest.
    pub const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
    /// rsaEncryption.
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// sha256WithRSAEncryption.
    pub const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// ecdsa-with-SHA256.
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    /// prime256v1.
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// id-kp-timeStamping.
    pub const TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_and_truncation_is_an_error() {
        for n in [0usize, 5, 127, 128, 300, 70_000] {
            let e = encode(tag::OCTET_STRING, &vec![7u8; n]);
            let t = Reader::new(&e).read().unwrap();
            assert_eq!(t.value.len(), n);
            assert_eq!(t.raw.len(), e.len());
            assert!(Reader::new(&e[..e.len() - 1]).read().is_err());
        }
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).read().is_err());
        assert!(Reader::new(&[0x30]).read().is_err());
        assert_eq!(integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[0, 0, 5]), vec![0x02, 0x01, 0x05]);
    }
}
