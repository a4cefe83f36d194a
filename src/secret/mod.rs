//! Secret values: age decryption into zeroizing memory, encryption to recipients, and keyed
//! fingerprints (HMAC-SHA256) that let tether detect change without keeping a value.

mod keys;
mod seal;

pub use keys::{Keyring, Recipient, parse_recipients};
pub use seal::{Sealing, check_structure, encrypt, inspect, open};

use std::fmt;
use std::path::PathBuf;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a redacted value prints as, everywhere.
pub const REDACTED: &str = "(sensitive value)";

/// Errors from reading identities, decrypting and encrypting. None carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the age identity file {path}: {source}")]
    ReadIdentity {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} holds no identity (AGE-SECRET-KEY-1… lines, or an OpenSSH private key)")]
    NoIdentityInFile { origin: String },
    #[error("{origin} has an invalid age identity on line {line}")]
    BadIdentity { origin: String, line: usize },
    #[error("{origin} holds an SSH key tether cannot use: {reason}")]
    BadSshIdentity { origin: String, reason: String },
    #[error(
        "no age identity is configured: set TETHER_AGE_KEY_FILE (files, comma-separated) or TETHER_AGE_KEY (the key itself), or pass --age-key-file"
    )]
    NoKeyring,
    #[error("the ciphertext is not age armor: {0}")]
    Malformed(String),
    #[error("no identity in {sources} can decrypt it")]
    NoMatchingIdentity { sources: String },
    #[error("the plaintext is not UTF-8 text")]
    NotText,
    #[error("{0:?} is not an age recipient (age1…, ssh-ed25519 … or ssh-rsa …)")]
    BadRecipient(String),
    #[error("no age recipients are listed: add ageRecipients to .tether.yaml at the manifest root")]
    NoRecipients,
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// A value that must never be shown: Debug, Display and Serialize print `(sensitive value)`;
/// the memory is zeroed on drop.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(s: String) -> Self {
        SecretValue(SecretString::from(s))
    }
    /// The value itself, for the one place that needs it: the request to a platform.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// A keyed fingerprint of a value: HMAC-SHA256. Safe to store and print. Kept as its 32 bytes
/// (a daemon holds one or two per variable); written and read as 64 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The 64 lower-case hex characters (ordered as the bytes are).
    pub fn hex(&self) -> String {
        lower_hex(&self.0)
    }

    /// From 64 hex characters; None for anything else.
    pub fn from_hex(s: &str) -> Option<Fingerprint> {
        if s.len() != 64 {
            return None;
        }
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).ok()?;
        Some(Fingerprint(b))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hmac:{}", &self.hex()[..12])
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.hex())
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Fingerprint::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("a fingerprint is 64 hexadecimal characters"))
    }
}

/// Computes fingerprints with a key that never leaves memory.
#[derive(Clone)]
pub struct Fingerprinter {
    /// The HMAC state after the key, cloned for each fingerprint (its key schedule is done once;
    /// the key itself is zeroized once this is made).
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter(..)")
    }
}

impl Fingerprinter {
    /// A fingerprinter keyed by `seed` (an identity, or a random per-store key).
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(seed).expect("any key length");
        mac.update(b"tether/fingerprint/v1");
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&*key).expect("32-byte key");
        Fingerprinter { keyed }
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> Fingerprint {
        let mut mac = self.keyed.clone();
        mac.update(domain);
        mac.update(data);
        Fingerprint(mac.finalize().into_bytes().into())
    }

    /// A short id of the key (not the key): tells whether cached fingerprints were made with it.
    pub fn key_id(&self) -> String {
        self.mac(b"key-id", b"").hex()[..16].to_string()
    }

    /// The fingerprint of a value as read back from a platform or written by tether.
    pub fn of_value(&self, value: &str) -> Fingerprint {
        self.mac(b"value:", value.as_bytes())
    }

    /// The fingerprint of a SHA-256 hex digest, as Supabase returns for a secret. The digest
    /// itself is never stored: a bare SHA-256 of a short secret can be guessed.
    pub fn of_sha256_hex(&self, digest: &str) -> Fingerprint {
        self.mac(b"sha256:", digest.to_ascii_lowercase().as_bytes())
    }

    /// Both fingerprints of a desired value: of the value, and of its SHA-256 digest.
    pub fn both(&self, value: &str) -> (Fingerprint, Fingerprint) {
        let digest = lower_hex(&Sha256::digest(value.as_bytes()));
        (
            self.of_value(value),
            self.mac(b"sha256:", digest.as_bytes()),
        )
    }
}

/// Lower-case hex of 32 bytes, without a character at a time.
fn lower_hex(bytes: &[u8]) -> String {
    let mut out = [0u8; 64];
    let n = bytes.len().min(32) * 2;
    hex::encode_to_slice(&bytes[..n / 2], &mut out[..n]).expect("twice the length");
    String::from_utf8(out[..n].to_vec()).expect("hex is ASCII")
}

pub(crate) fn describe(e: &age::DecryptError) -> String {
    match e {
        age::DecryptError::InvalidHeader => "the age header is invalid".into(),
        age::DecryptError::InvalidMac => "the age header's MAC does not match (corrupted)".into(),
        age::DecryptError::DecryptionFailed => "the payload does not decrypt (corrupted)".into(),
        age::DecryptError::UnknownFormat => "unknown age format".into(),
        age::DecryptError::Io(io) => format!("unreadable armor ({io})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_redaction() {
        let (text, recipient) = Keyring::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        std::fs::write(&path, text.as_bytes()).unwrap();
        let ring = Keyring::load(&path).unwrap();
        assert_eq!(ring.recipients(), vec![recipient.clone()]);
        let ct = encrypt("hunter2", &parse_recipients(&[recipient]).unwrap()).unwrap();
        assert!(ct.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        let v = ring.decrypt(&ct).unwrap();
        assert_eq!(v.expose(), "hunter2");
        assert_eq!(format!("{v} {v:?}"), "(sensitive value) (sensitive value)");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"(sensitive value)\"");
    }

    #[test]
    fn wrong_identity_and_corruption_are_distinct_errors() {
        let (_, other) = Keyring::generate();
        let (text, _) = Keyring::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        std::fs::write(&path, text.as_bytes()).unwrap();
        let ring = Keyring::load(&path).unwrap();
        let ct = encrypt("x", &parse_recipients(&[other]).unwrap()).unwrap();
        assert!(matches!(
            ring.decrypt(&ct),
            Err(SecretError::NoMatchingIdentity { .. })
        ));
        let mut lines: Vec<String> = ct.lines().map(String::from).collect();
        lines[2] = lines[2].chars().rev().collect();
        assert!(matches!(
            ring.decrypt(&lines.join("\n")),
            Err(SecretError::Malformed(_))
        ));
    }

    #[test]
    fn fingerprints_are_keyed() {
        let a = Fingerprinter::from_seed(b"one");
        let b = Fingerprinter::from_seed(b"two");
        assert_eq!(a.of_value("v"), a.of_value("v"));
        assert_ne!(a.of_value("v"), b.of_value("v"));
        assert_ne!(a.of_value("v").hex(), hex::encode(Sha256::digest(b"v")));
        let (_, d) = a.both("v");
        assert_eq!(
            d,
            a.of_sha256_hex(&hex::encode(Sha256::digest(b"v")).to_uppercase())
        );
    }

    #[test]
    fn fingerprints_are_stored_as_hex_and_read_back_only_from_hex() {
        let f = Fingerprinter::from_seed(b"one").of_value("v");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, format!("\"{}\"", f.hex()));
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), f);
        assert!(f.to_string().starts_with("hmac:") && f.to_string().len() == 17);
        for bad in ["\"abc\"", "\"\"", &format!("\"{}\"", "g".repeat(64)), "12"] {
            let e = serde_json::from_str::<Fingerprint>(bad).unwrap_err();
            assert!(
                e.to_string().contains("fingerprint is 64 hexadecimal") || bad == "12",
                "{bad}: {e}"
            );
        }
        // Ordered as their hex is, as when they were kept as strings.
        let g = Fingerprinter::from_seed(b"two").of_value("v");
        assert_eq!(f.cmp(&g), f.hex().cmp(&g.hex()));
    }
}
