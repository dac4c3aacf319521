//! `GET /company-users/mine`, `GET /company-users` and `GET /company-users/{id}`
//! (docs/wire-contract.md §3.5): the caller's memberships, and the company users of the caller's
//! company.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    types::ToJSON,
};
use uuid::Uuid;

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, COMPANY_USER_CODES, COMPANY_USERS_FORBIDDEN,
        INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, PAGINATION_INVALID, error_set,
    },
    includes::{COMPANY_USERS, IncludedResource, Includes, Relationships, wanted},
    jsonapi::{JsonApi, JsonApiEncoded, SelfLinks, link_under, resource_type},
    links::{base, resource_link},
    paging::{CollectionLinks, Paging, paged_links, unpaged_links},
};
use crate::service::{
    company::{self, CompanyUser, CompanyUserFilter, CompanyUsersQuery, Wanted},
    validate::parse_uuid,
};

/// The attributes of a company user.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CompanyUsersAttributes {
    /// Whether the company user is active (only active ones can authenticate).
    pub is_active: bool,
    /// Whether this is its customer's default company user, the one a customer token
    /// carries.
    pub is_default: bool,
}

resource_type!(CompanyUsersType, CompanyUsers, "company-users");

/// A `company-users` resource.
#[derive(Debug, Clone, Object)]
pub struct CompanyUsersResource {
    /// Always `company-users`.
    #[oai(rename = "type")]
    pub ty: CompanyUsersType,
    /// The company user's uuid (`idCompanyUser` of `POST /company-user-access-tokens`).
    pub id: Uuid,
    /// The company user's attributes.
    pub attributes: CompanyUsersAttributes,
    /// `companies`, `company-business-units`, `company-roles`, `customers`: those asked
    /// with `include`.
    #[oai(skip_serializing_if_is_none)]
    pub relationships: Option<Relationships>,
    /// The company user's URL.
    pub links: SelfLinks,
}

impl CompanyUsersResource {
    fn new(base: &str, user: &CompanyUser, relationships: Option<Relationships>) -> Self {
        Self {
            ty: CompanyUsersType::CompanyUsers,
            id: user.uuid,
            attributes: CompanyUsersAttributes {
                is_active: user.is_active,
                is_default: user.is_default,
            },
            relationships,
            links: resource_link(base, COMPANY_USERS, user.uuid),
        }
    }
}

/// The document of one company user.
#[derive(Debug, Object)]
pub struct CompanyUsersDocument {
    /// The company user.
    pub data: CompanyUsersResource,
    /// The related resources asked for with `include`, each once.
    #[oai(skip_serializing_if_is_none)]
    pub included: Option<Vec<IncludedResource>>,
}

/// The document of a company-user collection.
#[derive(Debug, Object)]
pub struct CompanyUsersCollectionDocument {
    /// The company users of this page.
    pub data: Vec<CompanyUsersResource>,
    /// The document's URL and, for a paged collection, the URLs of other pages.
    pub links: CollectionLinks,
    /// The related resources asked for with `include`, each once.
    #[oai(skip_serializing_if_is_none)]
    pub included: Option<Vec<IncludedResource>>,
}

#[derive(ApiResponse)]
pub enum CompanyUserResponse {
    /// The company user.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyUsersDocument>),
}

#[derive(ApiResponse)]
pub enum CompanyUsersResponse {
    /// The company users.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyUsersCollectionDocument>),
}

/// `GET /company-users/mine` answers with bytes: without `include`, its `data` is a
/// rendering kept with the cached listing.
#[derive(ApiResponse)]
pub enum MyCompanyUsersResponse {
    /// The company users.
    #[oai(status = 200)]
    Ok(JsonApiEncoded<CompanyUsersCollectionDocument>),
}

error_set!(MyCompanyUsersErrors: INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, AGENT_TOKEN_NOT_ACCEPTED);
error_set!(
    CompanyUsersErrors: PAGINATION_INVALID,
    INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_USER_CODES.no_context,
    COMPANY_USERS_FORBIDDEN
);
error_set!(
    CompanyUserErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_USER_CODES.no_context,
    COMPANY_USERS_FORBIDDEN,
    COMPANY_USER_CODES.not_found
);

/// The users as resources, with the related resources the service loaded.
fn resources(
    base: &str,
    wanted: Wanted,
    related: &company::Related,
    users: &[CompanyUser],
) -> (Vec<CompanyUsersResource>, Option<Vec<IncludedResource>>) {
    let includes = Includes::new(base, wanted, related);
    includes.render(users, |u| CompanyUsersResource::new(base, u, includes.of_company_user(u)))
}

/// The `data` of users without relationships, encoded as their `ToJSON` writes it.
fn encode_data(base: &str, users: &[CompanyUser]) -> Vec<u8> {
    let data: Vec<CompanyUsersResource> =
        users.iter().map(|u| CompanyUsersResource::new(base, u, None)).collect();
    serde_json::to_vec(&data.to_json().unwrap_or_default()).unwrap_or_default()
}

/// A collection document of encoded `data` and `links.self` only, byte for byte what
/// [`JsonApiEncoded::of`] makes of the same document (`data` before `links`; no `included`).
fn encode_collection(data: &[u8], self_link: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + self_link.len() + 32);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(data);
    body.extend_from_slice(b",\"links\":{\"self\":");
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, self_link);
    body.extend_from_slice(b"}}");
    body
}

/// A filter's values: `None` when absent; values that are not uuids match nothing.
fn filter_values(values: Option<Vec<String>>) -> Option<Vec<Uuid>> {
    values.map(|values| values.iter().filter_map(|v| parse_uuid(v.trim())).collect())
}

pub struct CompanyUsersApi;

#[OpenApi(tag = "ApiTags::CompanyUsers")]
impl CompanyUsersApi {
    /// Retrieve the caller's company users.
    ///
    /// Every usable membership of the caller's customer: an active company user in an
    /// approved, active company, i.e. every `idCompanyUser` that
    /// `POST /company-user-access-tokens` accepts. Works with any token and needs no
    /// company context; a customer without memberships gets an empty collection. The
    /// listing is remembered: it shows a change of the directory within 250 ms of its
    /// commit (the default of `--membership-cache-max-age-ms`), while the exchange itself
    /// always checks the membership in the database.
    #[oai(path = "/company-users/mine", method = "get", operation_id = "getMyCompanyUsers")]
    async fn mine(
        &self,
        caller: Bearer,
        /// Related resources to include, comma-separated: `companies`,
        /// `company-business-units`, `company-roles`, `customers` (and
        /// `company-business-unit-addresses` of the included units). Unknown names are
        /// ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<MyCompanyUsersResponse, ApiError<MyCompanyUsersErrors>> {
        let wanted = wanted(include.0.as_deref(), COMPANY_USERS);
        let mine =
            company::my_company_users(&state.db, &state.memberships, &caller.0, wanted).await?;
        let base = base(req, &state);
        if wanted == Wanted::default() {
            // Without includes, `data` depends only on the listing and the base URL.
            let listing = &mine.listing;
            let data = listing.rendered(&base, || encode_data(&base, &listing.users));
            let body = encode_collection(&data, &link_under(base, req));
            return Ok(MyCompanyUsersResponse::Ok(JsonApiEncoded::new(body)));
        }
        let links = unpaged_links(req, &state);
        let (data, included) = resources(&base, wanted, &mine.related, &mine.listing.users);
        let document = CompanyUsersCollectionDocument { data, links, included };
        Ok(MyCompanyUsersResponse::Ok(JsonApiEncoded::of(&document)))
    }

    /// Retrieve the company users of the caller's company.
    ///
    /// All company users of the company, active or not, ordered by creation. Needs a
    /// company context (403/1403) and a role with the permission
    /// `SeeCompanyUsersPermissionPlugin` (403/1405). Paged with `page[offset]` and
    /// `page[limit]` (at most the configured page limit, 100 by default); `links` then
    /// carries `first`, `last`, `prev` and `next`. Bad paging values get 400 before the
    /// company context is checked.
    #[oai(path = "/company-users", method = "get", operation_id = "getCompanyUsers")]
    #[expect(clippy::too_many_arguments, reason = "one argument per documented query parameter")]
    async fn list(
        &self,
        caller: Bearer,
        /// Only company users of these business units (uuids; repeat the parameter for
        /// several: any of them matches).
        #[oai(name = "filter[company-business-units.id]")]
        filter_units: Query<Option<Vec<String>>>,
        /// Only company users holding one of these roles (uuids; repeat the parameter for
        /// several: any of them matches).
        #[oai(name = "filter[company-roles.id]")]
        filter_roles: Query<Option<Vec<String>>>,
        /// The number of company users to skip (an integer ≥ 0; default 0).
        #[oai(name = "page[offset]", validator(pattern = r"^\+?[0-9]+$"))]
        page_offset: Query<Option<String>>,
        /// The most company users to return (an integer ≥ 1; default and maximum: the
        /// configured page limit, 100 unless changed).
        #[oai(name = "page[limit]", validator(pattern = r"^\+?0*[1-9][0-9]*$"))]
        page_limit: Query<Option<String>>,
        /// Related resources to include, comma-separated: `companies`,
        /// `company-business-units`, `company-roles`, `customers` (and
        /// `company-business-unit-addresses` of the included units). Unknown names are
        /// ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyUsersResponse, ApiError<CompanyUsersErrors>> {
        let page = Paging::parse(
            page_offset.0.as_deref(),
            page_limit.0.as_deref(),
            state.config.page_limit,
        )?;
        let query = CompanyUsersQuery {
            filter: CompanyUserFilter {
                business_units: filter_values(filter_units.0),
                roles: filter_values(filter_roles.0),
            },
            offset: page.offset,
            limit: page.limit,
            wanted: wanted(include.0.as_deref(), COMPANY_USERS),
        };
        let found = company::company_users(&state.db, &caller.0, &query).await?;
        let base = base(req, &state);
        let (data, included) = resources(&base, query.wanted, &found.related, &found.items);
        let links = paged_links(req, &state, page, found.total, data.len());
        Ok(CompanyUsersResponse::Ok(JsonApi(CompanyUsersCollectionDocument {
            data,
            links,
            included,
        })))
    }

    /// Retrieve a company user of the caller's company.
    ///
    /// Needs a company context (403/1403) and a role with the permission
    /// `SeeCompanyUsersPermissionPlugin` (403/1405). An unknown id, or one that is not a
    /// uuid, gets 404/1404; a company user of another company gets 403/1403.
    #[oai(path = "/company-users/:id", method = "get", operation_id = "getCompanyUser")]
    async fn get(
        &self,
        /// The company user's uuid.
        id: Path<String>,
        caller: Bearer,
        /// Related resources to include, comma-separated: `companies`,
        /// `company-business-units`, `company-roles`, `customers` (and
        /// `company-business-unit-addresses` of the included units). Unknown names are
        /// ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyUserResponse, ApiError<CompanyUserErrors>> {
        let wanted = wanted(include.0.as_deref(), COMPANY_USERS);
        let found = company::company_user(&state.db, &caller.0, &id.0, wanted).await?;
        let base = base(req, &state);
        let includes = Includes::new(&base, wanted, &found.related);
        let data =
            CompanyUsersResource::new(&base, &found.item, includes.of_company_user(&found.item));
        let included = includes.included();
        Ok(CompanyUserResponse::Ok(JsonApi(CompanyUsersDocument { data, included })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i32, is_default: bool) -> CompanyUser {
        CompanyUser {
            id,
            uuid: Uuid::new_v4(),
            customer_id: 1,
            company_id: 1,
            business_unit_id: None,
            is_active: true,
            is_default,
        }
    }

    #[test]
    fn the_kept_rendering_is_the_ordinary_encoding_byte_for_byte() {
        let base = "http://glue.example:8080";
        let self_link = "http://glue.example:8080/company-users/mine?include=x&q=\"é\\\"";
        for users in [vec![], vec![user(1, true)], vec![user(1, true), user(2, false)]] {
            let data = users.iter().map(|u| CompanyUsersResource::new(base, u, None)).collect();
            let links = CollectionLinks {
                self_link: self_link.to_owned(),
                first: None,
                last: None,
                prev: None,
                next: None,
            };
            let ordinary =
                JsonApiEncoded::of(&CompanyUsersCollectionDocument { data, links, included: None });
            let kept = encode_collection(&encode_data(base, &users), self_link);
            assert_eq!(String::from_utf8(kept).unwrap(), String::from_utf8(ordinary.0).unwrap());
        }
    }
}
