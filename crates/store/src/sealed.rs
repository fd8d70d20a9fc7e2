//! Secret settings sealed at rest: a [`ConfigStore`] over another that
//! encrypts the values of a connection's secret settings before they are
//! stored and opens them when they are read, so a copy of the database
//! alone reveals no secret. Everything above it sees plain values.
//!
//! A sealed value is a string `sy1:<base64 of nonce ‖ ciphertext>`,
//! XChaCha20-Poly1305 under the instance's key, with the setting's key as
//! associated data (a value cannot be moved to another setting).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::{ConfigStore, Connection, ConnectionUpdate, NewConnection, Result, Source, StoreError};

const PREFIX: &str = "sy1:";
const NONCE: usize = 24;
/// The metadata entry that proves a key is the one the database was
/// sealed with.
const CHECK_KEY: &str = "secret_key_check";
const CHECK_TEXT: &str = "switchyard secret key check";

/// The instance's secret key: 32 bytes.
#[derive(Clone)]
pub struct SecretKey(Arc<XChaCha20Poly1305>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        SecretKey(Arc::new(XChaCha20Poly1305::new(bytes.into())))
    }

    /// A key as an operator writes it: 64 hex digits or the base64 of 32
    /// bytes.
    pub fn parse(text: &str) -> std::result::Result<SecretKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<std::result::Result<Vec<u8>, _>>()
                .map_err(|e| e.to_string())?
        } else {
            BASE64.decode(text).map_err(|_| {
                "a secret key is 32 bytes, written as 64 hex digits or in base64".to_string()
            })?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "a secret key is 32 bytes, written as 64 hex digits or in base64 (this one is {} bytes)",
                b.len()
            )
        })?;
        Ok(SecretKey::from_bytes(&bytes))
    }

    /// A new random key, as [`SecretKey::parse`] reads it (hex).
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn seal(&self, value: &str, setting: &str) -> String {
        let nonce: [u8; NONCE] = rand::random();
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: setting.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        [PREFIX, &BASE64.encode(bytes)].concat()
    }

    /// The value under a sealed string; `None` when it is not sealed, or
    /// not with this key for this setting.
    pub fn open(&self, sealed: &str, setting: &str) -> Option<String> {
        let bytes = BASE64.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < NONCE {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE);
        let plain = self
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: setting.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// Which settings of each destination are secret.
pub type SecretSettings = HashMap<String, BTreeSet<String>>;

/// A [`ConfigStore`] whose connections' secret settings are sealed at
/// rest.
pub struct SealedConfigStore {
    inner: Arc<dyn ConfigStore>,
    key: SecretKey,
    secret: SecretSettings,
}

impl SealedConfigStore {
    /// Wraps `inner`, after checking that `key` is the one its secrets
    /// were sealed with (and marking the database with it when new).
    pub async fn open(
        inner: Arc<dyn ConfigStore>,
        key: SecretKey,
        secret: SecretSettings,
    ) -> Result<SealedConfigStore> {
        match inner.meta(CHECK_KEY).await? {
            Some(check) => {
                if key.open(&check, CHECK_KEY).as_deref() != Some(CHECK_TEXT) {
                    return Err(StoreError::WrongSecretKey);
                }
            }
            None => {
                inner
                    .set_meta(CHECK_KEY, &key.seal(CHECK_TEXT, CHECK_KEY))
                    .await?
            }
        }
        let store = SealedConfigStore { inner, key, secret };
        store.seal_plain_values().await?;
        Ok(store)
    }

    /// Secrets stored before sealing existed, sealed now.
    async fn seal_plain_values(&self) -> Result<()> {
        for source in self.inner.sources().await? {
            for c in self.inner.connections(&source.id).await? {
                let sealed = self.seal_settings(&c.destination, &c.settings);
                if sealed != c.settings {
                    self.inner
                        .update_connection(
                            &c.id,
                            ConnectionUpdate {
                                settings: Some(sealed),
                                ..ConnectionUpdate::default()
                            },
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    fn seal_settings(&self, destination: &str, settings: &str) -> String {
        let Some(secret) = self.secret.get(destination) else {
            return settings.to_string();
        };
        let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(settings) else {
            return settings.to_string();
        };
        let mut changed = false;
        for (k, v) in map.iter_mut() {
            if let serde_json::Value::String(text) = v
                && secret.contains(k)
                && !is_sealed(text)
            {
                *text = self.key.seal(text, k);
                changed = true;
            }
        }
        if changed {
            serde_json::Value::Object(map).to_string()
        } else {
            settings.to_string()
        }
    }

    /// Every sealed value opened, whatever the catalog says now (a
    /// destination that left it still has its secrets).
    fn open_settings(&self, settings: &str) -> String {
        if !settings.contains(PREFIX) {
            return settings.to_string();
        }
        let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(settings) else {
            return settings.to_string();
        };
        for (k, v) in map.iter_mut() {
            if let serde_json::Value::String(text) = v
                && is_sealed(text)
                && let Some(plain) = self.key.open(text, k)
            {
                *text = plain;
            }
        }
        serde_json::Value::Object(map).to_string()
    }

    fn opened(&self, mut c: Connection) -> Connection {
        c.settings = self.open_settings(&c.settings);
        c
    }
}

#[async_trait]
impl ConfigStore for SealedConfigStore {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        self.inner.meta(key).await
    }
    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.inner.set_meta(key, value).await
    }
    async fn create_source(&self, name: &str) -> Result<Source> {
        self.inner.create_source(name).await
    }
    async fn sources(&self) -> Result<Vec<Source>> {
        self.inner.sources().await
    }
    async fn source(&self, id: &str) -> Result<Option<Source>> {
        self.inner.source(id).await
    }
    async fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>> {
        self.inner.source_by_write_key(write_key).await
    }
    async fn rename_source(&self, id: &str, name: &str) -> Result<Source> {
        self.inner.rename_source(id, name).await
    }
    async fn rotate_write_key(&self, id: &str) -> Result<Source> {
        self.inner.rotate_write_key(id).await
    }
    async fn delete_source(&self, id: &str) -> Result<()> {
        self.inner.delete_source(id).await
    }

    async fn create_connection(&self, mut new: NewConnection) -> Result<Connection> {
        new.settings = self.seal_settings(&new.destination, &new.settings);
        Ok(self.opened(self.inner.create_connection(new).await?))
    }
    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        Ok(self.inner.connection(id).await?.map(|c| self.opened(c)))
    }
    async fn connections(&self, source_id: &str) -> Result<Vec<Connection>> {
        let all = self.inner.connections(source_id).await?;
        Ok(all.into_iter().map(|c| self.opened(c)).collect())
    }
    async fn update_connection(
        &self,
        id: &str,
        mut update: ConnectionUpdate,
    ) -> Result<Connection> {
        if let Some(settings) = &update.settings {
            let destination = match self.inner.connection(id).await? {
                Some(c) => c.destination,
                None => return Err(StoreError::NotFound("connection")),
            };
            update.settings = Some(self.seal_settings(&destination, settings));
        }
        Ok(self.opened(self.inner.update_connection(id, update).await?))
    }
    async fn delete_connection(&self, id: &str) -> Result<()> {
        self.inner.delete_connection(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_and_setting_only() {
        let key = SecretKey::parse(&SecretKey::generate()).unwrap();
        let sealed = key.seal("s3cr3t-value", "apiSecret");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("s3cr3t"));
        assert_ne!(
            sealed,
            key.seal("s3cr3t-value", "apiSecret"),
            "a fresh nonce each time"
        );
        assert_eq!(
            key.open(&sealed, "apiSecret").as_deref(),
            Some("s3cr3t-value")
        );
        assert_eq!(key.open(&sealed, "token"), None, "bound to its setting");
        let other = SecretKey::parse(&SecretKey::generate()).unwrap();
        assert_eq!(other.open(&sealed, "apiSecret"), None);
        assert_eq!(key.open("sy1:not base64!", "apiSecret"), None);
        assert_eq!(key.open("sy1:AAAA", "apiSecret"), None);
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_and_anything_else_is_explained() {
        let hex = "00".repeat(32);
        assert!(SecretKey::parse(&hex).is_ok());
        assert!(SecretKey::parse(&BASE64.encode([7u8; 32])).is_ok());
        let short = SecretKey::parse(&BASE64.encode([7u8; 16])).unwrap_err();
        assert!(short.contains("16 bytes"), "{short}");
        assert!(
            SecretKey::parse("not a key")
                .unwrap_err()
                .contains("64 hex digits")
        );
    }
}
