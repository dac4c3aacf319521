//! `PATCH /customer-password/{customerReference}`: a customer changes their own password
//! (docs/wire-contract.md §3.9).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        ApiError, CUSTOMER_NOT_FOUND, CUSTOMER_UNAUTHORIZED, INVALID_ACCESS_TOKEN,
        INVALID_PASSWORD, LOGIN_BLOCKED, LOGIN_QUEUE_FULL, LOGINS_WAITING_FROM_CLIENT,
        MISSING_ACCESS_TOKEN, error_set, passwords_differ, violation, violation_example,
    },
    jsonapi::{Attributes, JsonApiRequest, RequestDocument, all_three, resource_type},
};
use crate::{
    auth::password::Password,
    client_address::ClientKey,
    error::Violation,
    service::{password_policy::PasswordPolicy, sessions::PasswordChange},
};

/// The attributes of a password change.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct CustomerPasswordRequestAttributes {
    /// The customer's current password.
    pub password: String,
    /// The new password: 12 to 128 characters (`--password-min-length`,
    /// `--password-max-length`); length is the only rule.
    pub new_password: String,
    /// The new password again.
    pub confirm_password: String,
}

impl poem_openapi::types::Example for CustomerPasswordRequestAttributes {
    fn example() -> Self {
        Self {
            password: "change123".into(),
            new_password: "a long new passphrase".into(),
            confirm_password: "a long new passphrase".into(),
        }
    }
}

resource_type!(CustomerPasswordRequestType, CustomerPassword, "customer-password");

/// `data` of a password change.
#[derive(Debug, Object)]
pub struct CustomerPasswordRequestData {
    /// Always `customer-password`.
    #[oai(rename = "type")]
    pub ty: CustomerPasswordRequestType,
    pub attributes: CustomerPasswordRequestAttributes,
}

/// The request document of `PATCH /customer-password/{customerReference}`.
#[derive(Debug, Object)]
pub struct CustomerPasswordRequest {
    pub data: CustomerPasswordRequestData,
}

/// The three passwords of a change, as given.
#[derive(Debug)]
pub struct NewPasswords {
    pub password: Password,
    pub new_password: Password,
    pub confirm_password: Password,
}

impl RequestDocument for CustomerPasswordRequest {
    const RESOURCE_TYPE: &'static str = "customer-password";
    type Input = NewPasswords;

    fn input(attributes: &Attributes<'_>) -> Result<NewPasswords, Vec<Violation>> {
        let (password, new_password, confirm_password) = all_three(
            attributes.string("password"),
            attributes.string("newPassword"),
            attributes.string("confirmPassword"),
        )?;
        Ok(NewPasswords {
            password: Password::new(password),
            new_password: Password::new(new_password),
            confirm_password: Password::new(confirm_password),
        })
    }
}

#[derive(ApiResponse)]
pub enum PasswordChanged {
    /// The password is changed, and every refresh token of the customer revoked: its
    /// sessions end (access tokens run out as usual).
    #[oai(status = 204)]
    Changed,
}

error_set!(
    CustomerPasswordErrors: body;
    INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    violation_example("password", Violation::BLANK),
    violation_example("newPassword", Violation::MISSING),
    violation(&PasswordPolicy::DEFAULT.too_short("newPassword")),
    CUSTOMER_UNAUTHORIZED,
    passwords_differ("newPassword"),
    CUSTOMER_NOT_FOUND,
    INVALID_PASSWORD,
    LOGIN_BLOCKED,
    LOGINS_WAITING_FROM_CLIENT,
    LOGIN_QUEUE_FULL,
);

pub struct CustomerPasswordApi;

#[OpenApi(tag = "ApiTags::CustomerPassword")]
impl CustomerPasswordApi {
    /// Change the caller's password.
    ///
    /// Sets a new password for the caller's own customer (another reference gets 403/411),
    /// given the current one. The new password must be 12 to 128 characters long; with its
    /// confirmation it must match (422/406). A wrong current password gets 400/408 and
    /// counts as a failed login of the customer's e-mail and the client address, so it is
    /// blocked (429/4401) like logins. On success every refresh token of the customer is
    /// revoked: all its sessions end, including the caller's (access tokens run out as
    /// usual), and an outstanding password restore link stops working.
    #[oai(
        path = "/customer-password/:customerReference",
        method = "patch",
        operation_id = "changeCustomerPassword"
    )]
    async fn change(
        &self,
        /// The caller's customer reference.
        #[oai(name = "customerReference")]
        customer_reference: Path<String>,
        body: JsonApiRequest<CustomerPasswordRequest>,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<PasswordChanged, ApiError<CustomerPasswordErrors>> {
        let NewPasswords { password, new_password, confirm_password } = body.input()?;
        let change = PasswordChange {
            customer_reference: customer_reference.0,
            password,
            new_password,
            confirm_password,
        };
        let client = super::client::address(req, &state.trusted_proxies).map(ClientKey::of);
        state.sessions.change_password(&state.db, &caller.0, change, client).await?;
        Ok(PasswordChanged::Changed)
    }
}
