//! Black-box tests of glue-auth: the real service over a real socket, each test on a fresh
//! SQLite file and on a fresh PostgreSQL database. One test binary for the whole suite.

#![expect(clippy::unwrap_used, reason = "in tests a failed unwrap is a failed assertion")]

mod contract;
mod helpers;
mod mariadb;
mod postgres;
mod secrets;
mod smtp;

mod agents;
mod attack;
mod bad_input;
mod cli;
mod company_resources;
mod company_user_access_tokens;
mod cors;
mod crash;
mod customer_auth;
mod customer_password;
mod faults;
mod fuzz;
mod import;
mod instances;
mod legacy_hashes;
mod limits;
mod oauth;
mod openapi;
mod password_restore;
mod pipeline;
mod spryker_import;
