//! The key vault: AES-GCM encryption of stored secrets (provider API keys) under
//! `KEY_VAULTS_SECRET`, in LobeChat's text format `hex(iv):hex(tag):hex(ciphertext)` so that
//! vaults imported from LobeChat decrypt unchanged.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce, aes::Aes192};
use base64::Engine;
use rand::RngCore;

use crate::secret::Secret;

type Aes192Gcm = AesGcm<Aes192, aes_gcm::aead::consts::U12>;

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("KEY_VAULTS_SECRET must be base64 of 16, 24 or 32 bytes")]
    InvalidKey,
    #[error("the stored secret is not in the format iv:tag:ciphertext")]
    Malformed,
    #[error("the stored secret cannot be decrypted with this KEY_VAULTS_SECRET")]
    Undecryptable,
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

/// Encrypts and decrypts secrets at rest.
pub struct KeyVault {
    cipher: Cipher,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyVault(***)")
    }
}

impl KeyVault {
    /// Builds a vault from the base64 text of `KEY_VAULTS_SECRET`.
    pub fn from_base64(secret: &Secret) -> Result<Self, VaultError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.expose().trim())
            .map_err(|_| VaultError::InvalidKey)?;
        Self::from_bytes(&key)
    }

    pub fn from_bytes(key: &[u8]) -> Result<Self, VaultError> {
        let cipher = match key.len() {
            16 => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).map_err(|_| VaultError::InvalidKey)?)),
            24 => Cipher::Aes192(Box::new(Aes192Gcm::new_from_slice(key).map_err(|_| VaultError::InvalidKey)?)),
            32 => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::InvalidKey)?)),
            _ => return Err(VaultError::InvalidKey),
        };
        Ok(Self { cipher })
    }

    /// A new random 32-byte key, as base64 text suitable for `KEY_VAULTS_SECRET`.
    pub fn generate_base64() -> Secret {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Secret::new(base64::engine::general_purpose::STANDARD.encode(key))
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut iv = [0u8; IV_LEN];
        rand::rng().fill_bytes(&mut iv);
        let nonce = Nonce::from_slice(&iv);
        let payload = Payload { msg: plaintext.as_bytes(), aad: b"" };
        // AES-GCM encryption of an in-memory buffer cannot fail for inputs under 64 GiB.
        let sealed = match &self.cipher {
            Cipher::Aes128(c) => c.encrypt(nonce, payload),
            Cipher::Aes192(c) => c.encrypt(nonce, payload),
            Cipher::Aes256(c) => c.encrypt(nonce, payload),
        }
        .unwrap_or_default();
        // The aead crate appends the tag; LobeChat stores it separately before the ciphertext.
        let (ciphertext, tag) = sealed.split_at(sealed.len().saturating_sub(TAG_LEN));
        format!("{}:{}:{}", hex::encode(iv), hex::encode(tag), hex::encode(ciphertext))
    }

    pub fn decrypt(&self, stored: &str) -> Result<Secret, VaultError> {
        let mut parts = stored.split(':');
        let (Some(iv), Some(tag), Some(ciphertext), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VaultError::Malformed);
        };
        let iv = hex::decode(iv).map_err(|_| VaultError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| VaultError::Malformed)?;
        let mut sealed = hex::decode(ciphertext).map_err(|_| VaultError::Malformed)?;
        if iv.len() != IV_LEN || tag.len() != TAG_LEN {
            return Err(VaultError::Malformed);
        }
        sealed.extend_from_slice(&tag);
        let nonce = Nonce::from_slice(&iv);
        let payload = Payload { msg: &sealed, aad: b"" };
        let plain = match &self.cipher {
            Cipher::Aes128(c) => c.decrypt(nonce, payload),
            Cipher::Aes192(c) => c.decrypt(nonce, payload),
            Cipher::Aes256(c) => c.decrypt(nonce, payload),
        }
        .map_err(|_| VaultError::Undecryptable)?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| VaultError::Undecryptable)
    }
}

/// A new random token for a session, an invite or an API token: 32 random bytes as URL-safe
/// base64 with `prefix` in front (`lq_` for API tokens, so leaked ones are recognisable).
pub fn new_token(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The SHA-256 of a token as hex: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Whether two secrets are equal, in time that depends on neither (their SHA-256 digests are
/// compared in constant time, so not even the length leaks).
pub fn secrets_match(a: &str, b: &str) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let (a, b) = (sha2::Sha256::digest(a.as_bytes()), sha2::Sha256::digest(b.as_bytes()));
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// A password hash in PHC format (argon2id, the crate's recommended parameters). Slow on
/// purpose: call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String, VaultError> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| VaultError::Undecryptable)
}

/// Whether `password` matches a PHC hash made by [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_compared_whole() {
        assert!(secrets_match("code", "code"));
        assert!(!secrets_match("code", "cod"));
        assert!(!secrets_match("code", "code "));
        assert!(!secrets_match("", "x"));
    }

    #[test]
    fn passwords_and_tokens() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
        let token = new_token("lq_");
        assert!(token.expose().starts_with("lq_") && token.expose().len() > 40);
        assert_ne!(new_token("").expose(), new_token("").expose());
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn round_trips_for_every_key_size() {
        for size in [16, 24, 32] {
            let vault = KeyVault::from_bytes(&vec![7u8; size]).expect("valid key");
            let stored = vault.encrypt("sk-test-123");
            assert_eq!(stored.split(':').count(), 3);
            assert!(!stored.contains("sk-test"));
            assert_eq!(vault.decrypt(&stored).expect("decrypts").expose(), "sk-test-123");
        }
    }

    #[test]
    fn rejects_bad_keys_tampering_and_other_vaults() {
        assert_eq!(KeyVault::from_bytes(&[1u8; 10]).err(), Some(VaultError::InvalidKey));
        assert!(KeyVault::from_base64(&Secret::new("not base64!")).is_err());
        let vault = KeyVault::from_base64(&KeyVault::generate_base64()).expect("generated key is valid");
        let other = KeyVault::from_base64(&KeyVault::generate_base64()).expect("generated key is valid");
        let stored = vault.encrypt("hello");
        assert_eq!(other.decrypt(&stored).err(), Some(VaultError::Undecryptable));
        let mut tampered = stored.clone();
        tampered.pop();
        tampered.push(if stored.ends_with('0') { '1' } else { '0' });
        assert_eq!(vault.decrypt(&tampered).err(), Some(VaultError::Undecryptable));
        assert_eq!(vault.decrypt("abc").err(), Some(VaultError::Malformed));
    }

    #[test]
    fn decrypts_lobechat_format() {
        // AES-256-GCM with key = 32 bytes of 0x01 and iv = 12 bytes of 0x02, laid out as
        // LobeChat's KeyVaultsGateKeeper stores it (computed independently with Python's
        // `cryptography` package).
        let vault = KeyVault::from_bytes(&[1u8; 32]).expect("valid key");
        let stored = "020202020202020202020202:8e035988232c67f36d58b2e8f361fc8a:7cf4a6392f39a094f1f69ebb378aba90df";
        assert_eq!(vault.decrypt(stored).expect("decrypts").expose(), "{\"openai\":\"sk-x\"}");
    }
}
