//! The company directory kept by the admin verbs: customers, companies and memberships.

use entity::{agent, company, company_user, customer};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{sql::first, validate::normalize_email};

/// The statuses a company can have; only `approved` companies can be entered.
pub const COMPANY_STATUSES: [&str; 3] = ["pending", "approved", "denied"];

/// A customer by reference or by e-mail (case-insensitive).
pub async fn find_customer(
    db: &impl ConnectionTrait,
    reference_or_email: &str,
) -> Result<Option<customer::Model>, DbErr> {
    let column = if reference_or_email.contains('@') {
        customer::Column::EmailNormalized.eq(normalize_email(reference_or_email))
    } else {
        customer::Column::CustomerReference.eq(reference_or_email)
    };
    first(db, customer::Entity::find().filter(column)).await
}

/// Why an admin change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

async fn customer_or_not_found(
    db: &impl ConnectionTrait,
    who: &str,
) -> Result<customer::Model, DirectoryError> {
    find_customer(db, who)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("customer `{who}`")))
}

/// An agent by username (case-insensitive).
pub async fn find_agent(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<agent::Model>, DbErr> {
    let column = agent::Column::UsernameNormalized.eq(normalize_email(username));
    first(db, agent::Entity::find().filter(column)).await
}

/// Changes the agent `username` as `change` says, and its last change time.
async fn update_agent(
    db: &impl ConnectionTrait,
    username: &str,
    change: agent::ActiveModel,
) -> Result<(), DirectoryError> {
    let found = find_agent(db, username)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("agent `{username}`")))?;
    agent::ActiveModel { id: Set(found.id), updated_at: Set(crate::clock::now()), ..change }
        .update(db)
        .await?;
    Ok(())
}

pub async fn set_agent_active(
    db: &impl ConnectionTrait,
    username: &str,
    active: bool,
) -> Result<(), DirectoryError> {
    update_agent(db, username, agent::ActiveModel { is_active: Set(active), ..Default::default() })
        .await
}

pub async fn set_agent_password_hash(
    db: &impl ConnectionTrait,
    username: &str,
    phc: String,
) -> Result<(), DirectoryError> {
    let change = agent::ActiveModel { password_hash: Set(Some(phc)), ..Default::default() };
    update_agent(db, username, change).await
}

pub async fn set_customer_active(
    db: &impl ConnectionTrait,
    who: &str,
    active: bool,
) -> Result<(), DirectoryError> {
    let found = customer_or_not_found(db, who).await?;
    customer::ActiveModel {
        id: Set(found.id),
        is_active: Set(active),
        updated_at: Set(crate::clock::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// What `set_customer_profile` changes: each field given is set (`Some(None)` makes it
/// unknown), the others are kept.
#[derive(Debug, Default)]
pub struct Profile {
    pub gender: Option<Option<String>>,
    pub date_of_birth: Option<Option<String>>,
}

pub async fn set_customer_profile(
    db: &impl ConnectionTrait,
    who: &str,
    profile: Profile,
) -> Result<(), DirectoryError> {
    let found = customer_or_not_found(db, who).await?;
    let given = |value: Option<Option<String>>| value.map_or(NotSet, Set);
    customer::ActiveModel {
        id: Set(found.id),
        gender: given(profile.gender),
        date_of_birth: given(profile.date_of_birth),
        updated_at: Set(crate::clock::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

pub async fn set_customer_password_hash(
    db: &impl ConnectionTrait,
    who: &str,
    phc: String,
) -> Result<(), DirectoryError> {
    let found = customer_or_not_found(db, who).await?;
    customer::ActiveModel {
        id: Set(found.id),
        password_hash: Set(Some(phc)),
        updated_at: Set(crate::clock::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

pub async fn set_company_status(
    db: &impl ConnectionTrait,
    uuid: Uuid,
    status: Option<&str>,
    active: Option<bool>,
) -> Result<(), DirectoryError> {
    if let Some(status) = status.filter(|s| !COMPANY_STATUSES.contains(s)) {
        return Err(DirectoryError::Invalid(format!(
            "status `{status}` is not one of pending, approved, denied"
        )));
    }
    let found = first(db, company::Entity::find().filter(company::Column::Uuid.eq(uuid)))
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("company `{uuid}`")))?;
    let mut model = company::ActiveModel { id: Set(found.id), ..Default::default() };
    if let Some(status) = status {
        model.status = Set(status.to_owned());
    }
    if let Some(active) = active {
        model.is_active = Set(active);
    }
    model.update(db).await?;
    Ok(())
}

async fn company_user_or_not_found(
    db: &impl ConnectionTrait,
    uuid: Uuid,
) -> Result<company_user::Model, DirectoryError> {
    first(db, company_user::Entity::find().filter(company_user::Column::Uuid.eq(uuid)))
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("company user `{uuid}`")))
}

pub async fn set_company_user_active(
    db: &impl ConnectionTrait,
    uuid: Uuid,
    active: bool,
) -> Result<(), DirectoryError> {
    let found = company_user_or_not_found(db, uuid).await?;
    company_user::ActiveModel { id: Set(found.id), is_active: Set(active), ..Default::default() }
        .update(db)
        .await?;
    Ok(())
}

/// Makes `uuid` its customer's default company user (and no other).
pub async fn set_default_company_user_by_uuid(
    db: &impl ConnectionTrait,
    uuid: Uuid,
) -> Result<(), DirectoryError> {
    let found = company_user_or_not_found(db, uuid).await?;
    Ok(set_default_company_user(db, &found).await?)
}

/// Makes `user` its customer's only default company user.
pub async fn set_default_company_user(
    db: &impl ConnectionTrait,
    user: &company_user::Model,
) -> Result<(), DbErr> {
    company_user::Entity::update_many()
        .col_expr(company_user::Column::IsDefault, Expr::value(false))
        .filter(company_user::Column::CustomerId.eq(user.customer_id))
        .filter(company_user::Column::Id.ne(user.id))
        .exec(db)
        .await?;
    company_user::Entity::update_many()
        .col_expr(company_user::Column::IsDefault, Expr::value(true))
        .filter(company_user::Column::Id.eq(user.id))
        .exec(db)
        .await?;
    Ok(())
}
