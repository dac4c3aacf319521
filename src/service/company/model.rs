//! The company resources as the service hands them to the API: plain values, read from the
//! entities; internal ids stay so that related resources can be matched up.

use entity::{company, company_business_unit, company_role, company_unit_address, company_user};
use uuid::Uuid;

/// A company user: one customer's membership in one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyUser {
    pub id: i32,
    pub uuid: Uuid,
    pub customer_id: i32,
    pub company_id: i32,
    pub business_unit_id: Option<i32>,
    pub is_active: bool,
    pub is_default: bool,
}

impl From<company_user::Model> for CompanyUser {
    fn from(m: company_user::Model) -> Self {
        Self {
            id: m.id,
            uuid: m.uuid,
            customer_id: m.customer_id,
            company_id: m.company_id,
            business_unit_id: m.business_unit_id,
            is_active: m.is_active,
            is_default: m.is_default,
        }
    }
}

/// A company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub id: i32,
    pub uuid: Uuid,
    pub name: String,
    pub status: String,
    pub is_active: bool,
}

impl From<company::Model> for Company {
    fn from(m: company::Model) -> Self {
        Self { id: m.id, uuid: m.uuid, name: m.name, status: m.status, is_active: m.is_active }
    }
}

/// A business unit, with the uuid of its default billing address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessUnit {
    pub id: i32,
    pub uuid: Uuid,
    pub company_id: i32,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub external_url: String,
    pub bic: String,
    pub iban: String,
    pub default_billing_address: Option<Uuid>,
}

impl BusinessUnit {
    pub fn new(m: company_business_unit::Model, default_billing_address: Option<Uuid>) -> Self {
        Self {
            id: m.id,
            uuid: m.uuid,
            company_id: m.company_id,
            name: m.name,
            email: m.email,
            phone: m.phone,
            external_url: m.external_url,
            bic: m.bic,
            iban: m.iban,
            default_billing_address,
        }
    }
}

/// A company role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i32,
    pub uuid: Uuid,
    pub company_id: i32,
    pub name: String,
    pub is_default: bool,
}

impl From<company_role::Model> for Role {
    fn from(m: company_role::Model) -> Self {
        Self {
            id: m.id,
            uuid: m.uuid,
            company_id: m.company_id,
            name: m.name,
            is_default: m.is_default,
        }
    }
}

/// An address of a company's business units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub id: i32,
    pub uuid: Uuid,
    pub company_id: i32,
    pub address1: String,
    pub address2: String,
    pub address3: String,
    pub zip_code: String,
    pub city: String,
    pub phone: String,
    pub iso2_code: String,
    pub comment: String,
}

impl From<company_unit_address::Model> for Address {
    fn from(m: company_unit_address::Model) -> Self {
        Self {
            id: m.id,
            uuid: m.uuid,
            company_id: m.company_id,
            address1: m.address1,
            address2: m.address2,
            address3: m.address3,
            zip_code: m.zip_code,
            city: m.city,
            phone: m.phone,
            iso2_code: m.iso2_code,
            comment: m.comment,
        }
    }
}
