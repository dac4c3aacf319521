//! Login counters for blocking (docs/wire-contract.md §3.1), one row per e-mail and per client
//! address. They live in the database so that every instance of the service sees the same counts.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_attempt")]
pub struct Model {
    /// `email:<normalized e-mail>` or `ip:<address>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    /// Failed logins in the window.
    pub failures: i32,
    /// Attempts counted whose password check has not ended yet.
    pub pending: i32,
    pub window_started_at: i64,
    pub blocked_until: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
