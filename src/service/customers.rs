//! The caller's own customer (docs/wire-contract.md §3.7): a customer sees itself only.

use entity::customer;
use sea_orm::EntityTrait;

use super::{Reader, sql::first};
use crate::{auth::tokens::Identity, error::Error};

/// What a customer shows of itself (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub reference: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub salutation: String,
    /// `Male` or `Female`, when known.
    pub gender: Option<String>,
    /// `YYYY-MM-DD`, when known.
    pub date_of_birth: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the record's last change.
    pub updated_at: i64,
}

impl From<customer::Model> for Customer {
    fn from(m: customer::Model) -> Self {
        Self {
            reference: m.customer_reference,
            first_name: m.first_name,
            last_name: m.last_name,
            email: m.email,
            salutation: m.salutation,
            gender: m.gender,
            date_of_birth: m.date_of_birth,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// `GET /customers`: the caller's customer. A valid token may outlive its customer (tokens
/// live up to their `exp`): then it is not found.
pub async fn own(db: &Reader, caller: &Identity) -> Result<Customer, Error> {
    let db = db.connection();
    first(db, customer::Entity::find_by_id(caller.customer_id))
        .await?
        .map(Customer::from)
        .ok_or(Error::CustomerNotFound)
}

/// `GET /customers/{customerReference}`: the caller's customer, if `reference` names it.
pub async fn by_reference(
    db: &Reader,
    caller: &Identity,
    reference: &str,
) -> Result<Customer, Error> {
    if reference != caller.customer_reference {
        return Err(Error::CustomerNotFound);
    }
    own(db, caller).await
}
