//! A refresh token's text and the form of it that is stored (docs/wire-contract.md §2.3): a
//! key in the order of time, then 256 random bits; stored as the key and a SHA-256 of the
//! whole token. Why that layout: `docs/design/refresh-token-format.md`.

use std::{
    fmt::Write as _,
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{digest, rand::SecureRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::Error;

/// Hex digits of the key.
const KEY_LEN: usize = 16;
/// Base64 characters of the 256 random bits.
const SECRET_LEN: usize = 43;

/// A new refresh token.
#[derive(Debug, Clone)]
pub struct Minted {
    /// What the client gets.
    pub token: String,
    /// What is stored ([`stored_form`] of `token`).
    pub stored: String,
}

/// Makes a new refresh token.
pub fn mint() -> Result<Minted, Error> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::internal("no randomness"))?;
    // A clock before 1970 gives key 0: the token is as good, only out of order.
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let mut token = String::with_capacity(KEY_LEN + SECRET_LEN);
    let _ = write!(token, "{:016x}", micros as u64);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
    let stored = stored_form(&token);
    Ok(Minted { token, stored })
}

/// The stored form of `token`: its key and the hex SHA-256 of the whole token, or for a
/// token without a key (the layout before keys, or anything else a client sends) the bare
/// hash. Never fails: a token nobody issued simply matches no row.
pub fn stored_form(token: &str) -> String {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let key = token
        .get(..KEY_LEN)
        .filter(|key| token.len() == KEY_LEN + SECRET_LEN && is_key(key))
        .unwrap_or_default();
    let mut stored = String::with_capacity(key.len() + 2 * digest.as_ref().len());
    stored.push_str(key);
    for byte in digest.as_ref() {
        let _ = write!(stored, "{byte:02x}");
    }
    stored
}

fn is_key(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_a_time_key_and_256_random_bits() {
        let minted = mint().unwrap();
        assert_eq!(minted.token.len(), 59, "{}", minted.token);
        assert!(is_key(&minted.token[..16]));
        let bytes = URL_SAFE_NO_PAD.decode(&minted.token[16..]).unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(minted.token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn the_stored_form_is_the_key_and_a_hash_of_the_whole_token() {
        let minted = mint().unwrap();
        let (key, _) = minted.token.split_at(16);
        let hash = stored_form("no key");
        assert_eq!(hash.len(), 64);
        assert_eq!(minted.stored.len(), 16 + 64);
        assert!(minted.stored.starts_with(key));
        assert_eq!(minted.stored, stored_form(&minted.token));
        // The secret is not in it.
        assert!(!minted.stored.contains(&minted.token[16..]));
    }

    #[test]
    fn keys_sort_in_the_order_tokens_were_made() {
        let first = mint().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = mint().unwrap();
        assert!(first.stored < second.stored, "{} {}", first.stored, second.stored);
    }

    #[test]
    fn tokens_without_a_key_keep_their_old_stored_form() {
        // A token of the layout before keys: 43 characters, stored as its bare hex SHA-256.
        let old = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let hex: String = digest::digest(&digest::SHA256, old.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(stored_form(&old), hex);
        // Something else that merely starts with hex digits, or a key in capitals.
        let capitals = format!("0123456789ABCDEF{}", "a".repeat(43));
        let split_char = format!("{}é{}", "a".repeat(15), "a".repeat(42));
        for text in ["0123456789abcdef", &capitals, &split_char] {
            assert_eq!(stored_form(text).len(), 64, "{text}");
        }
    }
}
