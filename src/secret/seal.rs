//! Ciphertexts: encryption that records its recipients in the age header, and what a
//! ciphertext says about who can open it, read with or without an identity.
//!
//! An X25519 stanza does not name its recipient, so tether adds one more stanza,
//! `-> tether-recipients ID…`, listing a short hash of each recipient. age implementations
//! ignore stanzas of unknown types (the spec requires it), so `age -d` still decrypts; the
//! header MAC covers the stanza, so a decryption proves it was not edited.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};

use age_core::format::{FileKey, Stanza};
use zeroize::Zeroizing;

use super::{Keyring, Recipient, SecretError, SecretValue, describe};

/// The tag of the stanza that records the recipients.
const HINT_TAG: &str = "tether-recipients";

/// What a ciphertext's header says about its recipients.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sealing {
    /// X25519 stanzas (one per `age1…` recipient).
    pub x25519: usize,
    /// The tags of SSH stanzas (one per SSH recipient).
    pub ssh_tags: BTreeSet<String>,
    /// Recipient ids tether recorded when it encrypted (None: written by another tool).
    pub recorded: Option<BTreeSet<String>>,
    /// The recipients of the keyring's identities that open it (empty without a keyring).
    pub opened_by: BTreeSet<String>,
    /// The recipients of the identities tried (None without a keyring).
    pub tried: Option<BTreeSet<String>>,
}

impl Sealing {
    /// Why the ciphertext is not encrypted to exactly `expected`, or None when, as far as the
    /// header and the identities held can tell, it is.
    pub fn mismatch(&self, expected: &[Recipient]) -> Option<String> {
        if let Some(recorded) = &self.recorded {
            let want: BTreeSet<String> = expected.iter().map(Recipient::id).collect();
            if *recorded != want {
                let missing = expected.iter().filter(|r| !recorded.contains(&r.id()));
                let missing: Vec<String> = missing.map(|r| r.short()).collect();
                let extra = recorded.iter().filter(|id| !want.contains(*id)).count();
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!("it is not encrypted to {}", missing.join(", ")));
                }
                if extra > 0 {
                    parts.push(format!(
                        "it is encrypted to {extra} recipient{} the rule does not name",
                        if extra == 1 { "" } else { "s" }
                    ));
                }
                return Some(parts.join("; "));
            }
        }
        let x25519 = expected.iter().filter(|r| r.ssh_tag().is_none()).count();
        let tags: BTreeSet<String> = expected
            .iter()
            .filter_map(|r| r.ssh_tag().map(String::from))
            .collect();
        if self.x25519 != x25519 || self.ssh_tags != tags {
            return Some(format!(
                "it has {} X25519 and {} SSH recipient(s) where the rule names {} and {}",
                self.x25519,
                self.ssh_tags.len(),
                x25519,
                tags.len()
            ));
        }
        if let Some(held) = &self.tried {
            for r in held {
                let named = expected.iter().find(|e| e.as_str() == r);
                let opens = self.opened_by.contains(r);
                if let (Some(e), false) = (named, opens) {
                    return Some(format!(
                        "the rule names {e}, but that identity cannot open it"
                    ));
                }
                if opens && named.is_none() {
                    let short = r.parse::<Recipient>().map(|r| r.short());
                    let r = short.as_deref().unwrap_or(r);
                    return Some(format!(
                        "the identity of {r} opens it, but the rule does not name it"
                    ));
                }
            }
        }
        None
    }
}

/// An identity that records the header's stanzas and which of the keyring's identities
/// unwrap one, then answers with the first file key found.
struct Inspector<'a> {
    ids: Vec<(&'a str, &'a dyn age::Identity)>,
    seen: RefCell<Sealing>,
}

impl age::Identity for Inspector<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let mut seen = self.seen.borrow_mut();
        let mut found = None;
        for s in stanzas {
            match s.tag.as_str() {
                "X25519" => seen.x25519 += 1,
                "ssh-ed25519" | "ssh-rsa" => {
                    if let Some(tag) = s.args.first() {
                        seen.ssh_tags.insert(tag.clone());
                    }
                }
                HINT_TAG => {
                    seen.recorded = Some(s.args.iter().cloned().collect());
                }
                _ => {}
            }
            for (recipient, id) in &self.ids {
                match id.unwrap_stanza(s) {
                    Some(Ok(key)) => {
                        seen.opened_by.insert(recipient.to_string());
                        if found.is_none() {
                            found = Some(Ok(key));
                        }
                    }
                    Some(Err(e)) if found.is_none() => found = Some(Err(e)),
                    _ => {}
                }
            }
        }
        found
    }
}

/// Reads a ciphertext's header and, with a keyring, decrypts it: what the header says, and
/// the value (or why there is none).
pub fn open(
    armored: &str,
    keyring: Option<&Keyring>,
) -> (Sealing, Result<SecretValue, SecretError>) {
    let reader = age::armor::ArmoredReader::new(armored.trim().as_bytes());
    let decryptor = match age::Decryptor::new(reader) {
        Ok(d) => d,
        Err(e) => {
            return (
                Sealing::default(),
                Err(SecretError::Malformed(describe(&e))),
            );
        }
    };
    if decryptor.is_scrypt() {
        return (
            Sealing::default(),
            Err(SecretError::Malformed(
                "it is encrypted with a passphrase, not to age recipients".into(),
            )),
        );
    }
    let inspector = Inspector {
        ids: keyring
            .map(|k| k.identities().collect())
            .unwrap_or_default(),
        seen: RefCell::new(Sealing::default()),
    };
    let result = decryptor.decrypt(std::iter::once(&inspector as &dyn age::Identity));
    let mut sealing = inspector.seen.take();
    sealing.tried = keyring.map(|k| k.recipients().into_iter().collect());
    let value = match result {
        Err(age::DecryptError::NoMatchingKeys) => Err(SecretError::NoMatchingIdentity {
            sources: keyring.map(|k| k.sources().to_string()).unwrap_or_default(),
        }),
        Err(e) => Err(SecretError::Malformed(describe(&e))),
        Ok(mut stream) => {
            let mut buf = Zeroizing::new(Vec::new());
            match stream.read_to_end(&mut buf) {
                Err(e) => Err(SecretError::Malformed(e.to_string())),
                Ok(_) => match std::str::from_utf8(&buf) {
                    Ok(text) => Ok(SecretValue::new(text.to_string())),
                    Err(_) => Err(SecretError::NotText),
                },
            }
        }
    };
    (sealing, value)
}

/// What a ciphertext's header says, without decrypting it; an error when the armor or the
/// header is broken, or it is encrypted with a passphrase.
pub fn inspect(armored: &str) -> Result<Sealing, String> {
    match open(armored, None) {
        (_, Err(SecretError::Malformed(m))) => Err(m),
        (sealing, _) => Ok(sealing),
    }
}

/// Checks an armored age ciphertext without decrypting it: the armor, the header (its MAC is
/// checked only on decryption) and that it is encrypted to recipients, not a passphrase.
pub fn check_structure(armored: &str) -> Result<(), String> {
    inspect(armored).map(|_| ())
}

/// The stanza that records the recipients; it wraps nothing.
struct Hints(Vec<String>);

impl age::Recipient for Hints {
    fn wrap_file_key(
        &self,
        _: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let stanza = Stanza {
            tag: HINT_TAG.into(),
            args: self.0.clone(),
            body: Vec::new(),
        };
        Ok((vec![stanza], HashSet::new()))
    }
}

/// Encrypts `plaintext` to the recipients, ASCII-armored (what `age -a -r` writes), with
/// the recipients recorded in the header.
pub fn encrypt(plaintext: &str, recipients: &[Recipient]) -> Result<String, SecretError> {
    if recipients.is_empty() {
        return Err(SecretError::NoRecipients);
    }
    let ids: BTreeSet<String> = recipients.iter().map(Recipient::id).collect();
    let hints = Hints(ids.into_iter().collect());
    let all = recipients
        .iter()
        .map(Recipient::as_age)
        .chain(std::iter::once(&hints as &dyn age::Recipient));
    let enc =
        age::Encryptor::with_recipients(all).map_err(|e| SecretError::Encrypt(e.to_string()))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| SecretError::Encrypt(e.to_string()))?;
    let mut w = enc
        .wrap_output(armor)
        .map_err(|e| SecretError::Encrypt(e.to_string()))?;
    w.write_all(plaintext.as_bytes())
        .map_err(|e| SecretError::Encrypt(e.to_string()))?;
    w.finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| SecretError::Encrypt(e.to_string()))?;
    String::from_utf8(out).map_err(|e| SecretError::Encrypt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (Keyring, Recipient) {
        let (text, r) = Keyring::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        std::fs::write(&path, text.as_bytes()).unwrap();
        (Keyring::load(&path).unwrap(), r.parse().unwrap())
    }

    /// What another tool writes: no recorded recipients.
    fn plain_age(value: &str, to: &[Recipient]) -> String {
        let enc = age::Encryptor::with_recipients(to.iter().map(Recipient::as_age)).unwrap();
        let mut out = Vec::new();
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .unwrap();
        let mut w = enc.wrap_output(armor).unwrap();
        w.write_all(value.as_bytes()).unwrap();
        w.finish().and_then(|a| a.finish()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn recorded_recipients_are_read_without_a_key() {
        let (_, a) = keyring();
        let (_, b) = keyring();
        let ct = encrypt("v", &[a.clone(), b.clone()]).unwrap();
        let s = inspect(&ct).unwrap();
        assert_eq!(s.x25519, 2);
        assert_eq!(s.recorded, Some([a.id(), b.id()].into_iter().collect()));
        assert_eq!(
            s.mismatch(&[b.clone(), a.clone()]),
            None,
            "order does not matter"
        );
        let why = s.mismatch(std::slice::from_ref(&a)).unwrap();
        assert_eq!(why, "it is encrypted to 1 recipient the rule does not name");
    }

    #[test]
    fn without_a_record_the_count_and_the_identities_held_decide() {
        let (ring_a, a) = keyring();
        let (_, b) = keyring();
        let ct = plain_age("v", std::slice::from_ref(&a));
        let s = inspect(&ct).unwrap();
        assert_eq!(s.recorded, None);
        assert!(
            s.mismatch(&[a.clone(), b.clone()])
                .unwrap()
                .contains("it has 1 X25519")
        );
        // One for one: only an identity can tell.
        assert_eq!(s.mismatch(std::slice::from_ref(&b)), None);
        let (opened, value) = open(&ct, Some(&ring_a));
        assert_eq!(value.unwrap().expose(), "v");
        assert_eq!(
            opened.mismatch(std::slice::from_ref(&b)).unwrap(),
            format!(
                "the identity of {} opens it, but the rule does not name it",
                a.short()
            )
        );
        assert_eq!(opened.mismatch(std::slice::from_ref(&a)), None);
    }

    #[test]
    fn a_passphrase_and_broken_armor_are_errors() {
        let enc = age::Encryptor::with_user_passphrase("pw".to_string().into());
        let mut out = Vec::new();
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .unwrap();
        let mut w = enc.wrap_output(armor).unwrap();
        w.write_all(b"v").unwrap();
        w.finish().and_then(|a| a.finish()).unwrap();
        let err = inspect(&String::from_utf8(out).unwrap()).unwrap_err();
        assert!(err.contains("passphrase"), "{err}");
        assert!(
            inspect("-----BEGIN AGE ENCRYPTED FILE-----\nbm90\n-----END AGE ENCRYPTED FILE-----\n")
                .is_err()
        );
    }
}
