//! What the endpoints and the admin verbs do, independent of HTTP: no poem here. The
//! operations read through a [`Reader`] and write through the token store; their queries
//! take a connection (`&impl ConnectionTrait`) so they run alike in and out of transactions.

pub mod audit;
pub mod company;
pub mod customers;
pub mod directory;
pub mod health;
pub mod membership;
pub mod membership_cache;
pub mod password_policy;
mod reader;
pub mod session_cap;
pub mod sessions;
pub mod sql;
pub mod throttle;
pub mod token_store;
pub mod validate;

pub use reader::Reader;
