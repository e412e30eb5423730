//! The pre-shared key and the handshake's proofs: each side sends a fresh random nonce and
//! proves it holds the key with an HMAC-SHA256 over both nonces, the protocol version and
//! the device identity, under a label of its own role (so a proof cannot be reflected).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Bytes in a nonce.
pub const NONCE_LEN: usize = 32;

/// Shortest key accepted.
pub const MIN_KEY: usize = 16;

/// Longest key file read.
pub const MAX_KEY: usize = 4096;

/// A handshake challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

/// An HMAC-SHA256 proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof(pub [u8; 32]);

/// Which side a proof speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The DPU-side forwarder.
    Forwarder,
    /// The gateway.
    Gateway,
}

/// Why a key file was not usable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// It could not be read.
    #[error("cannot read key file {0}: {1}")]
    Read(String, std::io::Error),
    /// Too short (after trailing whitespace is removed) or too long.
    #[error("key file {0}: {1} bytes; a key has {MIN_KEY} to {MAX_KEY} bytes (e.g. head -c 32 /dev/urandom | base64)")]
    Length(String, usize),
    /// The system's random source failed.
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

/// The pre-shared key (its bytes never appear in logs).
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// A key from bytes (16 to 4096 of them).
    pub fn new(bytes: &[u8]) -> Result<Key, KeyError> {
        if !(MIN_KEY..=MAX_KEY).contains(&bytes.len()) {
            return Err(KeyError::Length("(inline)".into(), bytes.len()));
        }
        Ok(Key(bytes.to_vec()))
    }

    /// Reads a key file: its bytes, without trailing whitespace (a newline from `echo`).
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| KeyError::Read(name.clone(), e))?;
        if meta.len() > MAX_KEY as u64 + 64 {
            return Err(KeyError::Length(name, meta.len() as usize));
        }
        let mut bytes = std::fs::read(path).map_err(|e| KeyError::Read(name.clone(), e))?;
        while bytes.last().is_some_and(u8::is_ascii_whitespace) {
            bytes.pop();
        }
        if !(MIN_KEY..=MAX_KEY).contains(&bytes.len()) {
            return Err(KeyError::Length(name, bytes.len()));
        }
        Ok(Key(bytes))
    }

    /// The proof `role` sends for this handshake.
    pub fn prove(&self, role: Role, version: u16, identity: &str, forwarder: &Nonce, gateway: &Nonce) -> Proof {
        Proof(self.mac(role, version, identity, forwarder, gateway).finalize().into_bytes().into())
    }

    /// Checks a proof in constant time.
    pub fn verify(
        &self,
        role: Role,
        version: u16,
        identity: &str,
        forwarder: &Nonce,
        gateway: &Nonce,
        proof: &Proof,
    ) -> bool {
        self.mac(role, version, identity, forwarder, gateway).verify_slice(&proof.0).is_ok()
    }

    fn mac(&self, role: Role, version: u16, identity: &str, forwarder: &Nonce, gateway: &Nonce) -> Hmac<Sha256> {
        // HMAC takes keys of any length: new_from_slice cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => <Hmac<Sha256> as Mac>::new(&Default::default()),
        };
        let label: &[u8] = match role {
            Role::Forwarder => b"dpfs-remote forwarder proof\0",
            Role::Gateway => b"dpfs-remote gateway proof\0",
        };
        mac.update(label);
        mac.update(&version.to_le_bytes());
        mac.update(&(identity.len() as u32).to_le_bytes());
        mac.update(identity.as_bytes());
        mac.update(&forwarder.0);
        mac.update(&gateway.0);
        mac
    }
}

impl Nonce {
    /// A fresh random nonce.
    pub fn random() -> Result<Nonce, KeyError> {
        let mut n = [0u8; NONCE_LEN];
        getrandom::fill(&mut n).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Nonce(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_key_role_identity_and_nonces() {
        let k = Key::new(b"0123456789abcdef").unwrap();
        let other = Key::new(b"0123456789abcdeX").unwrap();
        let (a, b) = (Nonce::random().unwrap(), Nonce::random().unwrap());
        assert_ne!(a, b);
        let p = k.prove(Role::Forwarder, 1, "dev", &a, &b);
        assert!(k.verify(Role::Forwarder, 1, "dev", &a, &b, &p));
        assert!(!other.verify(Role::Forwarder, 1, "dev", &a, &b, &p));
        assert!(!k.verify(Role::Gateway, 1, "dev", &a, &b, &p), "a proof must not be reflected");
        assert!(!k.verify(Role::Forwarder, 2, "dev", &a, &b, &p));
        assert!(!k.verify(Role::Forwarder, 1, "dew", &a, &b, &p));
        assert!(!k.verify(Role::Forwarder, 1, "dev", &b, &a, &p));
    }

    #[test]
    fn key_files_are_read_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "0123456789abcdefXYZ\n").unwrap();
        let k = Key::load(&f).unwrap();
        assert_eq!(k.0, b"0123456789abcdefXYZ");
        assert_eq!(format!("{k:?}"), "Key(19 bytes)");
        std::fs::write(&f, "short\n").unwrap();
        let e = Key::load(&f).unwrap_err().to_string();
        assert!(e.contains("5 bytes") && e.contains("16"), "{e}");
        let e = Key::load(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.starts_with("cannot read key file") && e.contains("missing"), "{e}");
    }
}
