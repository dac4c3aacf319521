//! The sea-orm entities of glue-auth, one module per table (docs/wire-contract.md §4).
//!
//! Internal keys are integers; every resource a client sees is addressed by a uuid or, for
//! customers, by the customer reference. Times are Unix seconds (`i64`), which compare the
//! same way on SQLite and PostgreSQL.

pub mod agent;
pub mod agent_refresh_token;
pub mod company;
pub mod company_business_unit;
pub mod company_role;
pub mod company_role_permission;
pub mod company_unit_address;
pub mod company_unit_address_to_business_unit;
pub mod company_user;
pub mod company_user_role;
pub mod customer;
pub mod login_attempt;
pub mod password_restore_key;
pub mod refresh_token;

pub mod prelude {
    pub use super::agent::Entity as Agent;
    pub use super::agent_refresh_token::Entity as AgentRefreshToken;
    pub use super::company::Entity as Company;
    pub use super::company_business_unit::Entity as CompanyBusinessUnit;
    pub use super::company_role::Entity as CompanyRole;
    pub use super::company_role_permission::Entity as CompanyRolePermission;
    pub use super::company_unit_address::Entity as CompanyUnitAddress;
    pub use super::company_unit_address_to_business_unit::Entity as CompanyUnitAddressToBusinessUnit;
    pub use super::company_user::Entity as CompanyUser;
    pub use super::company_user_role::Entity as CompanyUserRole;
    pub use super::customer::Entity as Customer;
    pub use super::login_attempt::Entity as LoginAttempt;
    pub use super::password_restore_key::Entity as PasswordRestoreKey;
    pub use super::refresh_token::Entity as RefreshToken;
}
