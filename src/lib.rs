//! glue-auth: the company-account authentication of Spryker's Glue Storefront API as a
//! standalone service.
//!
//! Reading order:
//! - [`cli`] and [`config`]: the command line and the settings;
//! - [`app`]: start-up, the bound server, graceful shutdown;
//! - [`api`]: the HTTP surface: JSON:API documents, the error envelope, the request pipeline,
//!   one module per resource, the OpenAPI document;
//! - [`service`]: what the operations do, with no HTTP in it;
//! - [`auth`]: passwords (and, with the token endpoints, keys and claims);
//! - [`error`]: the one domain error, which [`api::errors`] maps to statuses and Glue codes;
//! - [`client_address`]: who a request comes from, behind trusted proxies too;
//! - [`db`], [`dataset`], [`admin`]: the database, the import format, the admin verbs.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client_address;
pub mod clock;
pub mod config;
pub mod dataset;
pub mod db;
pub mod error;
pub mod generations;
pub mod listener;
pub mod service;
pub mod telemetry;
