//! A customer's password: `PATCH /customer-password/{customerReference}` changes it
//! (docs/wire-contract.md §3.9); `POST /customer-forgotten-password` mails a restore link and
//! `PATCH /customer-restore-password/{id}` sets a new one with its key (§3.10).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};

use super::AppState;
use super::{
    ApiTags,
    bearer::{Bearer, OptionalBearer},
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, CUSTOMER_NOT_FOUND, CUSTOMER_UNAUTHORIZED,
        INVALID_ACCESS_TOKEN, INVALID_PASSWORD, LOGIN_BLOCKED, LOGIN_QUEUE_FULL,
        LOGINS_WAITING_FROM_CLIENT, MISSING_ACCESS_TOKEN, RESET_REQUESTS_LIMITED,
        RESTORE_KEY_INVALID, error_set, passwords_differ, violation, violation_example,
    },
    jsonapi::{Attributes, JsonApiRequest, RequestDocument, all_three, resource_type},
};
use crate::{
    auth::password::Password,
    client_address::ClientKey,
    error::Violation,
    service::{
        password_policy::PasswordPolicy,
        sessions::{PasswordChange, PasswordRestore},
        validate::is_email,
    },
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

/// The attributes of a forgotten-password request.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CustomerForgottenPasswordRequestAttributes {
    /// The e-mail address of the account.
    pub email: String,
}

impl poem_openapi::types::Example for CustomerForgottenPasswordRequestAttributes {
    fn example() -> Self {
        Self { email: "sonia@acme.com".into() }
    }
}

resource_type!(
    CustomerForgottenPasswordRequestType,
    CustomerForgottenPassword,
    "customer-forgotten-password"
);

/// `data` of a forgotten-password request.
#[derive(Debug, Object)]
pub struct CustomerForgottenPasswordRequestData {
    /// Always `customer-forgotten-password`.
    #[oai(rename = "type")]
    pub ty: CustomerForgottenPasswordRequestType,
    pub attributes: CustomerForgottenPasswordRequestAttributes,
}

/// The request document of `POST /customer-forgotten-password`.
#[derive(Debug, Object)]
pub struct CustomerForgottenPasswordRequest {
    pub data: CustomerForgottenPasswordRequestData,
}

impl RequestDocument for CustomerForgottenPasswordRequest {
    const RESOURCE_TYPE: &'static str = "customer-forgotten-password";
    /// The e-mail address, as given.
    type Input = String;

    fn input(attributes: &Attributes<'_>) -> Result<String, Vec<Violation>> {
        let email = attributes.string("email").map_err(|v| vec![v])?;
        if !is_email(email) {
            return Err(vec![Violation::new("email", Violation::NOT_AN_EMAIL)]);
        }
        Ok(email.to_owned())
    }
}

/// The attributes of a password restore.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct CustomerRestorePasswordRequestAttributes {
    /// The key of the restore link the customer received by mail.
    pub restore_password_key: String,
    /// The new password: 12 to 128 characters by default; length is the only rule.
    pub password: String,
    /// The new password again.
    pub confirm_password: String,
}

impl poem_openapi::types::Example for CustomerRestorePasswordRequestAttributes {
    fn example() -> Self {
        Self {
            restore_password_key: "000661ba151bb7f6n1iZupykl3V0zkYt-kl14XU2pIpg79MzfX_Fv_q2Gzo"
                .into(),
            password: "a long new passphrase".into(),
            confirm_password: "a long new passphrase".into(),
        }
    }
}

resource_type!(
    CustomerRestorePasswordRequestType,
    CustomerRestorePassword,
    "customer-restore-password"
);

/// `data` of a password restore.
#[derive(Debug, Object)]
pub struct CustomerRestorePasswordRequestData {
    /// Always `customer-restore-password`.
    #[oai(rename = "type")]
    pub ty: CustomerRestorePasswordRequestType,
    pub attributes: CustomerRestorePasswordRequestAttributes,
}

/// The request document of `PATCH /customer-restore-password/{id}`.
#[derive(Debug, Object)]
pub struct CustomerRestorePasswordRequest {
    pub data: CustomerRestorePasswordRequestData,
}

impl RequestDocument for CustomerRestorePasswordRequest {
    const RESOURCE_TYPE: &'static str = "customer-restore-password";
    type Input = PasswordRestore;

    fn input(attributes: &Attributes<'_>) -> Result<PasswordRestore, Vec<Violation>> {
        let (restore_key, password, confirm_password) = all_three(
            attributes.string("restorePasswordKey"),
            attributes.string("password"),
            attributes.string("confirmPassword"),
        )?;
        Ok(PasswordRestore {
            restore_key: restore_key.to_owned(),
            password: Password::new(password),
            confirm_password: Password::new(confirm_password),
        })
    }
}

#[derive(ApiResponse)]
pub enum ResetRequested {
    /// Accepted: if the address belongs to an active customer, a mail with a restore link
    /// is on its way. The answer is the same, and as fast, for any other address.
    #[oai(status = 204)]
    Accepted,
}

#[derive(ApiResponse)]
pub enum PasswordRestored {
    /// The password is set and the key spent; every refresh token of the customer is
    /// revoked.
    #[oai(status = 204)]
    Restored,
}

error_set!(
    ForgottenPasswordErrors: body;
    INVALID_ACCESS_TOKEN,
    violation_example("email", Violation::BLANK),
    violation_example("email", Violation::NOT_AN_EMAIL),
    RESET_REQUESTS_LIMITED,
);

error_set!(
    RestorePasswordErrors: body;
    INVALID_ACCESS_TOKEN,
    violation_example("restorePasswordKey", Violation::BLANK),
    violation(&PasswordPolicy::DEFAULT.too_short("password")),
    violation_example("confirmPassword", Violation::MISSING),
    passwords_differ("password"),
    RESTORE_KEY_INVALID,
);

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
    AGENT_TOKEN_NOT_ACCEPTED,
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

    /// Ask for a password restore link.
    ///
    /// Always 204, whether or not the address belongs to a customer, and just as fast:
    /// nobody learns which addresses have accounts. For an active customer a restore key
    /// is made (a new one replaces any earlier one; it works once, for an hour by default,
    /// `--password-reset-ttl`) and a mail with the link (`--password-reset-url`) is sent.
    /// Requests are counted per e-mail and per client address: more than 5 within an hour
    /// (`--password-reset-requests`, `--password-reset-window`) get 429.
    #[oai(
        path = "/customer-forgotten-password",
        method = "post",
        operation_id = "requestCustomerPasswordRestore"
    )]
    async fn forgotten(
        &self,
        body: JsonApiRequest<CustomerForgottenPasswordRequest>,
        _caller: OptionalBearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<ResetRequested, ApiError<ForgottenPasswordErrors>> {
        let email = body.input()?;
        let client = super::client::address(req, &state.trusted_proxies).map(ClientKey::of);
        state.sessions.forgotten_password(&state.db, &email, client).await?;
        Ok(ResetRequested::Accepted)
    }

    /// Set a new password with a restore key.
    ///
    /// The key comes from the restore link's mail, in `restorePasswordKey`; as in Glue the
    /// path needs an id, whose value is not used. An unknown, used, replaced or expired key
    /// gets 422/415. On success the key is spent and every refresh token of the customer
    /// revoked.
    #[oai(
        path = "/customer-restore-password/:id",
        method = "patch",
        operation_id = "restoreCustomerPassword"
    )]
    async fn restore(
        &self,
        /// Any value (Glue requires an id here and does not use it).
        #[oai(name = "id")]
        _id: Path<String>,
        body: JsonApiRequest<CustomerRestorePasswordRequest>,
        _caller: OptionalBearer,
        state: Data<&Arc<AppState>>,
    ) -> Result<PasswordRestored, ApiError<RestorePasswordErrors>> {
        let restore = body.input()?;
        state.sessions.restore_password(&state.db, restore).await?;
        Ok(PasswordRestored::Restored)
    }
}
