//! Authentication primitives: password hashing now; signing keys, claims and the bearer
//! extractor join here as the token endpoints arrive.

pub mod password;
