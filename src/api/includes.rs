//! `include` and what it brings (docs/wire-contract.md §3.5, §3.6): the `relationships` of
//! each resource and the `included` resources, rendered from what the service loaded.
//!
//! `include` follows Glue: a name counts when a resource in the document has that
//! relationship, so an included resource carries relationships too (`include=
//! company-business-units,companies` on company users gives each included unit its
//! `companies`). Relationships are arrays even for to-one, as Glue writes them; `included`
//! holds each resource once, grouped by type in a fixed order, by internal id within a type.

use std::collections::BTreeMap;

use poem_openapi::{Enum, Object, types::ToJSON};
use serde_json::Value;

use super::{
    companies::CompaniesResource,
    company_business_unit_addresses::CompanyBusinessUnitAddressesResource,
    company_business_units::CompanyBusinessUnitsResource, company_roles::CompanyRolesResource,
    customers::CustomersResource, jsonapi::SelfLinks,
};
use crate::service::company::{BusinessUnit, CompanyUser, Related, Role, Wanted};

pub const COMPANIES: &str = "companies";
pub const COMPANY_USERS: &str = "company-users";
pub const COMPANY_BUSINESS_UNITS: &str = "company-business-units";
pub const COMPANY_ROLES: &str = "company-roles";
pub const COMPANY_BUSINESS_UNIT_ADDRESSES: &str = "company-business-unit-addresses";
pub const CUSTOMERS: &str = "customers";

/// The types a relationship can point to, i.e. the types that can be in `included`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RelatedType {
    #[oai(rename = "companies")]
    Companies,
    #[oai(rename = "company-business-units")]
    CompanyBusinessUnits,
    #[oai(rename = "company-roles")]
    CompanyRoles,
    #[oai(rename = "company-business-unit-addresses")]
    CompanyBusinessUnitAddresses,
    #[oai(rename = "customers")]
    Customers,
}

/// A resource's type and id: one element of a relationship's `data`.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct ResourceIdentifier {
    /// The related resource's type.
    #[oai(rename = "type")]
    pub ty: RelatedType,
    /// The related resource's id.
    pub id: String,
}

/// One relationship: the related resources' identifiers (an array even for to-one, as in
/// Glue; empty when there is none).
#[derive(Debug, Clone, Object)]
pub struct Relationship {
    /// The identifiers of the related resources; each is in `included`.
    pub data: Vec<ResourceIdentifier>,
}

/// The relationships of a resource: only those the request asked for with `include`.
#[derive(Debug, Clone, Default, Object)]
pub struct Relationships {
    /// The company (company users, business units, roles).
    #[oai(skip_serializing_if_is_none)]
    pub companies: Option<Relationship>,
    /// The business unit of a company user.
    #[oai(rename = "company-business-units", skip_serializing_if_is_none)]
    pub company_business_units: Option<Relationship>,
    /// The roles of a company user.
    #[oai(rename = "company-roles", skip_serializing_if_is_none)]
    pub company_roles: Option<Relationship>,
    /// The addresses of a business unit.
    #[oai(rename = "company-business-unit-addresses", skip_serializing_if_is_none)]
    pub company_business_unit_addresses: Option<Relationship>,
    /// The customer of a company user (id: the customer reference).
    #[oai(skip_serializing_if_is_none)]
    pub customers: Option<Relationship>,
}

/// A resource in `included`: any of the related types, with the attributes of its type
/// (see `CompaniesAttributes`, `CompanyBusinessUnitsAttributes`, `CompanyRolesAttributes`,
/// `CompanyBusinessUnitAddressesAttributes`, `CustomersAttributes`).
#[derive(Debug, Clone, Object)]
pub struct IncludedResource {
    /// The resource's type.
    #[oai(rename = "type")]
    pub ty: RelatedType,
    /// The resource's id (a uuid; the customer reference for `customers`).
    pub id: String,
    /// The attributes of the resource's type.
    pub attributes: BTreeMap<String, Value>,
    /// Its relationships, when the request asked for types it relates to.
    #[oai(skip_serializing_if_is_none)]
    pub relationships: Option<Relationships>,
    /// The resource's own URL.
    pub links: SelfLinks,
}

/// What a request's `include` asks for, for a document whose primary data is `primary`.
/// Unknown names, and names no resource of the document relates to, are ignored.
pub fn wanted(include: Option<&str>, primary: &str) -> Wanted {
    let names: Vec<&str> =
        include.unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let asked = |name: &str| names.contains(&name);
    match primary {
        COMPANY_USERS => Wanted {
            companies: asked(COMPANIES),
            business_units: asked(COMPANY_BUSINESS_UNITS),
            roles: asked(COMPANY_ROLES),
            customers: asked(CUSTOMERS),
            addresses: asked(COMPANY_BUSINESS_UNITS) && asked(COMPANY_BUSINESS_UNIT_ADDRESSES),
        },
        COMPANY_BUSINESS_UNITS => Wanted {
            companies: asked(COMPANIES),
            addresses: asked(COMPANY_BUSINESS_UNIT_ADDRESSES),
            ..Wanted::default()
        },
        COMPANY_ROLES => Wanted { companies: asked(COMPANIES), ..Wanted::default() },
        _ => Wanted::default(),
    }
}

/// The related resources of one document, ready to be written as `relationships` and
/// `included`.
pub struct Includes<'a> {
    base: &'a str,
    wanted: Wanted,
    related: &'a Related,
}

fn identifiers<'a>(ty: RelatedType, ids: impl IntoIterator<Item = &'a str>) -> Relationship {
    Relationship {
        data: ids.into_iter().map(|id| ResourceIdentifier { ty, id: id.to_owned() }).collect(),
    }
}

fn attributes(value: &impl ToJSON) -> BTreeMap<String, Value> {
    match value.to_json() {
        Some(Value::Object(map)) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

impl<'a> Includes<'a> {
    /// What `wanted` asked for, as the service loaded it into `related`.
    pub fn new(base: &'a str, wanted: Wanted, related: &'a Related) -> Self {
        Self { base, wanted, related }
    }

    /// The resources of the primary data, each by `resource`, and `included`.
    pub fn render<T, R>(
        &self,
        items: &[T],
        resource: impl Fn(&T) -> R,
    ) -> (Vec<R>, Option<Vec<IncludedResource>>) {
        (items.iter().map(resource).collect(), self.included())
    }

    /// Whether the request asked for anything: then `relationships` and `included` appear.
    pub fn asked(&self) -> bool {
        self.wanted != Wanted::default()
    }

    fn company(&self, company_id: i32) -> Option<Relationship> {
        let uuid = self.related.companies.get(&company_id).map(|c| c.uuid.to_string());
        self.wanted.companies.then(|| identifiers(RelatedType::Companies, uuid.as_deref()))
    }

    /// The relationships of a company user.
    pub fn of_company_user(&self, user: &CompanyUser) -> Option<Relationships> {
        if !self.asked() {
            return None;
        }
        let unit = user
            .business_unit_id
            .and_then(|id| self.related.business_units.get(&id))
            .map(|u| u.uuid.to_string());
        let roles: Vec<String> = self
            .related
            .roles_of_user
            .get(&user.id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.related.roles.get(id))
            .map(|r| r.uuid.to_string())
            .collect();
        let customer = self.related.customers.get(&user.customer_id).map(|c| c.reference.as_str());
        Some(Relationships {
            companies: self.company(user.company_id),
            company_business_units: self
                .wanted
                .business_units
                .then(|| identifiers(RelatedType::CompanyBusinessUnits, unit.as_deref())),
            company_roles: self
                .wanted
                .roles
                .then(|| identifiers(RelatedType::CompanyRoles, roles.iter().map(String::as_str))),
            customers: self.wanted.customers.then(|| identifiers(RelatedType::Customers, customer)),
            company_business_unit_addresses: None,
        })
    }

    /// The relationships of a business unit, or `None` when none of its types was asked.
    pub fn of_business_unit(&self, unit: &BusinessUnit) -> Option<Relationships> {
        if !self.wanted.companies && !self.wanted.addresses {
            return None;
        }
        let addresses: Vec<String> = self
            .related
            .addresses_of_unit
            .get(&unit.id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.related.addresses.get(id))
            .map(|a| a.uuid.to_string())
            .collect();
        Some(Relationships {
            companies: self.company(unit.company_id),
            company_business_unit_addresses: self.wanted.addresses.then(|| {
                identifiers(
                    RelatedType::CompanyBusinessUnitAddresses,
                    addresses.iter().map(String::as_str),
                )
            }),
            ..Relationships::default()
        })
    }

    /// The relationships of a role, or `None` when its company was not asked for.
    pub fn of_role(&self, role: &Role) -> Option<Relationships> {
        self.wanted.companies.then(|| Relationships {
            companies: self.company(role.company_id),
            ..Default::default()
        })
    }

    /// `included`: `None` when nothing was asked.
    pub fn included(&self) -> Option<Vec<IncludedResource>> {
        if !self.asked() {
            return None;
        }
        let base = self.base;
        let mut out = Vec::new();
        for company in self.related.companies.values() {
            let r = CompaniesResource::new(base, company);
            out.push(IncludedResource {
                ty: RelatedType::Companies,
                id: r.id.to_string(),
                attributes: attributes(&r.attributes),
                relationships: None,
                links: r.links,
            });
        }
        for unit in self.related.business_units.values() {
            let r = CompanyBusinessUnitsResource::new(base, unit, self.of_business_unit(unit));
            out.push(IncludedResource {
                ty: RelatedType::CompanyBusinessUnits,
                id: r.id.to_string(),
                attributes: attributes(&r.attributes),
                relationships: r.relationships,
                links: r.links,
            });
        }
        for role in self.related.roles.values() {
            let r = CompanyRolesResource::new(base, role, self.of_role(role));
            out.push(IncludedResource {
                ty: RelatedType::CompanyRoles,
                id: r.id.to_string(),
                attributes: attributes(&r.attributes),
                relationships: r.relationships,
                links: r.links,
            });
        }
        for address in self.related.addresses.values() {
            let r = CompanyBusinessUnitAddressesResource::new(base, address);
            out.push(IncludedResource {
                ty: RelatedType::CompanyBusinessUnitAddresses,
                id: r.id.to_string(),
                attributes: attributes(&r.attributes),
                relationships: None,
                links: r.links,
            });
        }
        for customer in self.related.customers.values() {
            let r = CustomersResource::new(base, customer);
            out.push(IncludedResource {
                ty: RelatedType::Customers,
                id: r.id,
                attributes: attributes(&r.attributes),
                relationships: None,
                links: r.links,
            });
        }
        Some(out)
    }
}
