//! Authentication primitives: password hashing now; signing keys, claims and the bearer
//! extractor join here as the token endpoints arrive.

pub mod cache;
pub mod keys;
pub mod password;
pub mod refresh_token;
pub mod tokens;
