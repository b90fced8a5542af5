//! Key secrets are `lc_` plus 40 random alphanumerics. Only their SHA-256 is stored, and a
//! key is found by looking its hash up: high-entropy secrets need no salt or slow hash.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub const SECRET_PREFIX: &str = "lc_";
const RANDOM_CHARS: usize = 40;
/// How much of the secret lists and logs show: `lc_` and the first 8 random characters.
const DISPLAY_PREFIX_CHARS: usize = SECRET_PREFIX.len() + 8;

/// A freshly generated secret. It exists in memory only until it is shown once.
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    pub fn generate() -> Self {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_CHARS)
            .map(char::from)
            .collect();
        Self(format!("{SECRET_PREFIX}{random}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_CHARS]
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

/// SHA-256 of a presented secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Hashes a presented value only if it could be a key at all, so junk is refused
    /// without a database round trip.
    pub fn of_presented(presented: &str) -> Option<Self> {
        let random = presented.strip_prefix(SECRET_PREFIX)?;
        let plausible =
            random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric());
        plausible.then(|| Self::of(presented))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_the_prefix_and_hash_consistently() {
        let secret = ApiKeySecret::generate();
        assert!(secret.expose().starts_with("lc_"));
        assert_eq!(secret.expose().len(), 43);
        assert_eq!(KeyHash::of_presented(secret.expose()), Some(secret.hash()));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn implausible_keys_are_not_hashed() {
        assert!(KeyHash::of_presented("nope").is_none());
        assert!(KeyHash::of_presented("lc_short").is_none());
        assert!(KeyHash::of_presented(&format!("lc_{}", "é".repeat(20))).is_none());
    }
}
