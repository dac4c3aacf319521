//! The read endpoints a company context opens (docs/wire-contract.md §3.5, §3.6): company users,
//! companies, business units, roles and addresses, with `include`, filters and paging.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use super::helpers::{Answer, Db, TestApp, document, on_both_databases};

on_both_databases!(
    sonia_lists_the_company_users_of_acme_in_creation_order,
    a_trailing_slash_still_reads_the_collection,
    the_collection_is_paged_with_first_last_prev_and_next,
    the_page_limit_defaults_to_and_is_capped_at_the_configured_one,
    bad_paging_values_get_400,
    the_collection_filters_by_business_unit_and_by_role,
    including_everything_on_a_company_user_gives_relationships_and_included_once,
    included_units_carry_their_own_relationships_when_asked,
    unknown_include_names_are_ignored_and_nothing_asked_means_no_keys,
    sonia_reads_one_company_user_of_her_company,
    sonia_reads_her_company,
    sonia_reads_business_units_with_their_company_and_addresses,
    sonia_reads_roles_and_an_address_of_her_company,
    company_users_mine_lists_only_memberships_that_can_be_entered,
    trever_without_the_permission_gets_1405_on_the_directory,
    bill_without_a_company_gets_no_context_for_mine_and_finds_no_resource_by_id,
    resources_of_another_company_are_not_found_and_its_users_are_forbidden,
    unknown_and_malformed_ids_are_not_found,
    a_removed_permission_applies_to_the_next_request,
    a_deactivated_membership_loses_its_company_context_at_once,
    the_listing_follows_directory_changes_within_its_bound,
    the_company_user_token_chooses_which_company_is_read,
    every_endpoint_needs_a_token,
    the_bare_collections_are_protected_and_not_implemented,
);

const ACME: &str = "62de4ab6-b768-5c21-8835-455d9f341625";
const BOB_HOTEL: &str = "5a15e950-169f-5ff0-8b88-152d1d1cd76e";
const SONIA: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
const TREVER: &str = "3c79dd9f-dc74-559c-88d5-449660b51132";
const ANNE_ACME: &str = "72778771-2020-574f-bbaf-05da5889e79e";
const ANNE_BOB: &str = "c7c148a6-5181-5ac4-b2a7-1bf91242ab12";
const INITECH: &str = "3842c87c-0cc5-5521-998c-0dc6ed23d0d4";
const ANNE_INITECH: &str = "2da5d436-292a-541e-a559-1d7c8e218357";
const HQ_UNIT: &str = "ff1c18c9-fb5d-514d-9358-79887ed6d5c6";
const HR_UNIT: &str = "5b9c6fc4-bf5d-5b53-9ca9-1916657e6fb2";
const BOB_UNIT: &str = "8e29e1d1-e4a0-5a6c-a386-5439cc0bf026";
const ADMIN: &str = "b5b4988f-4c29-568a-858b-a66b8784b5ac";
const BUYER: &str = "50c647a4-d27f-5d82-a587-1d0b7cc6b58d";
const APPROVER: &str = "8e8adac3-f430-57ba-9c4e-69b2b3e666f0";
const BOB_ADMIN: &str = "40f44a8c-f529-5ff6-a182-479f6532bf3e";
const HQ_ADDRESS: &str = "2175cddd-f8af-5885-b161-227b5c93e72f";
const HR_ADDRESS: &str = "19a55c0d-7bf0-580c-a9e8-6edacdc1ecde";
const BOB_ADDRESS: &str = "d437b2bf-37d5-5bf1-aa26-7801497ee16d";
const NO_CONTEXT: &str = "Current company user is not set. You need to select the current company user with /company-user-access-tokens in order to access the resource collection.";

/// Acme's company users, in the order they were created.
const ACME_USERS: [&str; 12] = [
    "2816dcbd-855e-567e-b26f-4d57f3310bb8",
    "3db9f6fd-fdec-5605-a982-8d8ea979041c",
    "46355100-0a82-5fdb-896e-5c0ce70de816",
    "b61c4549-7491-5d26-b8c7-639950a710c7",
    "ee4423bd-fdd6-51d2-b6b4-eddd4a133d15",
    "c615f85e-75c3-5540-9a7e-cf6d293b764b",
    TREVER,
    SONIA,
    "4ac44bbf-b8f3-542f-8be5-84964cb83d87",
    "1b4d012d-efc1-5a34-9329-a4468ace93d2",
    "a72c1064-d283-57f4-a4c4-03e747b7bf25",
    ANNE_ACME,
];

/// A company-user token of `email` for its membership `company_user`.
async fn company_user_token(app: &TestApp, email: &str, company_user: &str) -> String {
    let (customer_token, _) = app.tokens_of(email).await;
    let body = document("company-user-access-tokens", json!({"idCompanyUser": company_user}));
    let answer = app.post("/company-user-access-tokens", &body, Some(&customer_token)).await;
    assert_eq!(answer.status, 201, "{email} as {company_user}: {}", answer.body);
    answer.tokens().0
}

async fn sonia(app: &TestApp) -> String {
    company_user_token(app, "sonia@acme.com", SONIA).await
}

/// The ids of a collection's `data`.
fn ids(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is no array: {}", answer.body))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The one success every read shares: 200, JSON:API media type.
#[track_caller]
fn assert_ok(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/vnd.api+json"));
}

fn company_users_resource(app: &TestApp, id: &str, active: bool, default: bool) -> Value {
    json!({
        "type": "company-users",
        "id": id,
        "attributes": {"isActive": active, "isDefault": default},
        "links": {"self": app.url(&format!("/company-users/{id}"))},
    })
}

fn acme(app: &TestApp) -> Value {
    json!({
        "type": "companies",
        "id": ACME,
        "attributes": {"isActive": true, "name": "Acme Corporation", "status": "approved"},
        "links": {"self": app.url(&format!("/companies/{ACME}"))},
    })
}

fn hr_unit(app: &TestApp) -> Value {
    json!({
        "type": "company-business-units",
        "id": HR_UNIT,
        "attributes": {
            "name": "Acme Corporation HR department",
            "email": "HR@acme.com",
            "phone": "4902890031",
            "externalUrl": "",
            "bic": "",
            "iban": "",
            "defaultBillingAddress": null,
        },
        "links": {"self": app.url(&format!("/company-business-units/{HR_UNIT}"))},
    })
}

fn role(app: &TestApp, id: &str, name: &str, default: bool) -> Value {
    json!({
        "type": "company-roles",
        "id": id,
        "attributes": {"name": name, "isDefault": default},
        "links": {"self": app.url(&format!("/company-roles/{id}"))},
    })
}

fn hq_address(app: &TestApp) -> Value {
    json!({
        "type": "company-business-unit-addresses",
        "id": HQ_ADDRESS,
        "attributes": {
            "address1": "Oderberger Str.",
            "address2": "57",
            "address3": "",
            "zipCode": "10115",
            "city": "Berlin",
            "phone": "4902890001",
            "iso2Code": "DE",
            "comment": "HQ",
        },
        "links": {"self": app.url(&format!("/company-business-unit-addresses/{HQ_ADDRESS}"))},
    })
}

fn with_relationships(mut resource: Value, relationships: Value) -> Value {
    resource["relationships"] = relationships;
    resource
}

fn linkage(ty: &str, ids: &[&str]) -> Value {
    json!({"data": ids.iter().map(|id| json!({"type": ty, "id": id})).collect::<Vec<_>>()})
}

async fn sonia_lists_the_company_users_of_acme_in_creation_order(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let answer = app.get_as("/company-users", Some(&token)).await;
    assert_ok(&answer);
    assert_eq!(ids(&answer), ACME_USERS);
    assert_eq!(answer.body["links"], json!({"self": app.url("/company-users")}));
    assert_eq!(answer.body["data"][7], company_users_resource(&app, SONIA, true, false));
    assert!(answer.body.get("included").is_none(), "{}", answer.body);
    let mut names: Vec<&str> =
        answer.body.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["data", "links"]);

    // Inactive company users are listed too, with isActive false.
    glue_auth::service::directory::set_company_user_active(&app.db, TREVER.parse().unwrap(), false)
        .await
        .unwrap();
    let answer = app.get_as("/company-users", Some(&token)).await;
    assert_eq!(ids(&answer), ACME_USERS);
    assert_eq!(answer.body["data"][6], company_users_resource(&app, TREVER, false, false));
}

async fn a_trailing_slash_still_reads_the_collection(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let answer = app.get_as("/company-users/", Some(&token)).await;
    assert_ok(&answer);
    assert_eq!(ids(&answer), ACME_USERS);
    assert_eq!(answer.body["links"]["self"], app.url("/company-users/"));
}

async fn the_collection_is_paged_with_first_last_prev_and_next(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let page = |offset: u32, limit: u32| {
        app.url(&format!("/company-users?page[offset]={offset}&page[limit]={limit}"))
    };

    let middle = app.get_as("/company-users?page[offset]=5&page[limit]=5", Some(&token)).await;
    assert_eq!(ids(&middle), ACME_USERS[5..10]);
    assert_eq!(
        middle.body["links"],
        json!({
            "self": app.url("/company-users?page[offset]=5&page[limit]=5"),
            "first": page(0, 5),
            "last": page(10, 5),
            "prev": page(0, 5),
            "next": page(10, 5),
        })
    );

    let last = app.get_as("/company-users?page[offset]=10&page[limit]=5", Some(&token)).await;
    assert_eq!(ids(&last), ACME_USERS[10..]);
    assert_eq!(last.body["links"]["prev"], page(5, 5));
    assert!(last.body["links"].get("next").is_none(), "{}", last.body);

    let first = app.get_as("/company-users?page[limit]=5", Some(&token)).await;
    assert_eq!(ids(&first), ACME_USERS[..5]);
    assert_eq!(first.body["links"]["next"], page(5, 5));
    assert_eq!(first.body["links"]["last"], page(10, 5));
    assert!(first.body["links"].get("prev").is_none(), "{}", first.body);

    // A page that holds everything still carries first and last once paging was asked for.
    let all = app.get_as("/company-users?page[offset]=0", Some(&token)).await;
    assert_eq!(ids(&all), ACME_USERS);
    assert_eq!(all.body["links"]["first"], page(0, 100));
    assert_eq!(all.body["links"]["last"], page(0, 100));
    assert!(all.body["links"].get("next").is_none() && all.body["links"].get("prev").is_none());

    // Beyond the end: an empty page, not an error.
    let beyond = app.get_as("/company-users?page[offset]=40&page[limit]=5", Some(&token)).await;
    assert_eq!(ids(&beyond), Vec::<String>::new());
    assert_eq!(beyond.body["links"]["last"], page(10, 5));

    // Other parameters are kept, in order, and percent-encoded page names are replaced.
    let path = "/company-users?filter[company-roles.id]=".to_owned()
        + BUYER
        + "&page%5Blimit%5D=3&include=companies&page[offset]=3";
    let answer = app.get_as(&path, Some(&token)).await;
    assert_eq!(answer.body["links"]["self"], app.url(&path));
    assert_eq!(
        answer.body["links"]["next"],
        app.url(&format!(
            "/company-users?filter[company-roles.id]={BUYER}&include=companies\
             &page[offset]=6&page[limit]=3"
        ))
    );
}

async fn the_page_limit_defaults_to_and_is_capped_at_the_configured_one(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(db, test, &["--page-limit", "4"]).await else { return };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let token = sonia(&app).await;
    let page =
        |offset: u32| app.url(&format!("/company-users?page[offset]={offset}&page[limit]=4"));
    // Without paging parameters, more items than fit: the paging links appear.
    let answer = app.get_as("/company-users", Some(&token)).await;
    assert_eq!(ids(&answer), ACME_USERS[..4]);
    assert_eq!(
        answer.body["links"],
        json!({"self": app.url("/company-users"), "first": page(0), "last": page(8), "next": page(4)})
    );
    let answer = app.get_as("/company-users?page[limit]=50&page[offset]=4", Some(&token)).await;
    assert_eq!(ids(&answer), ACME_USERS[4..8]);
    assert_eq!(answer.body["links"]["next"], page(8));
}

async fn bad_paging_values_get_400(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    for query in [
        "page[offset]=-1",
        "page[offset]=abc",
        "page[offset]=",
        "page[offset]=1.5",
        "page[limit]=0",
        "page[limit]=-3",
        "page[limit]=ten",
        "page[offset]=0&page[limit]=0",
    ] {
        let answer = app.get_as(&format!("/company-users?{query}"), Some(&token)).await;
        answer.assert_error(400, None, "Pagination parameters are invalid.");
    }
}

async fn the_collection_filters_by_business_unit_and_by_role(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let get = |query: String| {
        let token = token.clone();
        let app = &app;
        async move { ids(&app.get_as(&format!("/company-users?{query}"), Some(&token)).await) }
    };
    let units = "filter[company-business-units.id]";
    let roles = "filter[company-roles.id]";
    assert_eq!(get(format!("{units}={HR_UNIT}")).await, [TREVER, SONIA]);
    assert_eq!(get(format!("{roles}={ADMIN}")).await, [ACME_USERS[0], SONIA]);
    assert_eq!(get(format!("{units}={HR_UNIT}&{roles}={ADMIN}")).await, [SONIA]);
    assert_eq!(
        get(format!("{units}={HR_UNIT}&{units}={HQ_UNIT}")).await,
        [ACME_USERS[0], TREVER, SONIA, ACME_USERS[8], ACME_USERS[9], ACME_USERS[10], ANNE_ACME]
    );
    assert_eq!(
        get(format!("{roles}={ADMIN}&{roles}={APPROVER}")).await,
        [ACME_USERS[0], SONIA, ACME_USERS[8], ACME_USERS[10]]
    );
    // Percent-encoded parameter names work as well.
    assert_eq!(
        get(format!("filter%5Bcompany-business-units.id%5D={HR_UNIT}")).await,
        [TREVER, SONIA]
    );
    // Another company's unit or role, or no uuid at all, matches nobody.
    assert!(get(format!("{units}={BOB_UNIT}")).await.is_empty());
    assert!(get(format!("{roles}={BOB_ADMIN}")).await.is_empty());
    assert!(get(format!("{roles}=not-a-uuid")).await.is_empty());
}

async fn including_everything_on_a_company_user_gives_relationships_and_included_once(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    app.set_customer_times("sonia@acme.com", 1_700_000_000, 1_700_000_000).await;
    let path = format!(
        "/company-users/{SONIA}?include=companies,company-business-units,company-roles,customers"
    );
    let answer = app.get_as(&path, Some(&token)).await;
    assert_ok(&answer);
    let companies = linkage("companies", &[ACME]);
    assert_eq!(
        answer.body["data"],
        with_relationships(
            company_users_resource(&app, SONIA, true, false),
            json!({
                "companies": companies,
                "company-business-units": linkage("company-business-units", &[HR_UNIT]),
                "company-roles": linkage("company-roles", &[ADMIN, BUYER]),
                "customers": linkage("customers", &["DE--21"]),
            })
        )
    );
    assert_eq!(
        answer.body["included"],
        json!([
            acme(&app),
            with_relationships(hr_unit(&app), json!({"companies": companies})),
            with_relationships(role(&app, ADMIN, "Admin", false), json!({"companies": companies})),
            with_relationships(role(&app, BUYER, "Buyer", true), json!({"companies": companies})),
            {
                "type": "customers",
                "id": "DE--21",
                "attributes": {
                    "firstName": "Sonia",
                    "lastName": "Wagner",
                    "email": "sonia@acme.com",
                    "salutation": "Ms",
                    "gender": null,
                    "dateOfBirth": null,
                    "createdAt": "2023-11-14 22:13:20.000000",
                    "updatedAt": "2023-11-14 22:13:20.000000",
                },
                "links": {"self": app.url("/customers/DE--21")},
            },
        ])
    );

    // On the collection every related resource is included once.
    let answer = app.get_as("/company-users?include=company-roles,companies", Some(&token)).await;
    assert_ok(&answer);
    let included: Vec<(String, String)> = answer.body["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["type"].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("companies", ACME),
        ("company-roles", ADMIN),
        ("company-roles", BUYER),
        ("company-roles", "51f2db94-5173-5c57-87c4-c6d3de76385f"),
        ("company-roles", APPROVER),
    ]
    .iter()
    .map(|(t, i)| ((*t).to_owned(), (*i).to_owned()))
    .collect();
    assert_eq!(included, expected);
    // Anne's Acme membership has no roles: an empty relationship, not a missing one.
    let anne = &answer.body["data"][11];
    assert_eq!(anne["id"], ANNE_ACME);
    assert_eq!(anne["relationships"]["company-roles"], json!({"data": []}));
    assert_eq!(anne["relationships"]["companies"], linkage("companies", &[ACME]));
    assert!(anne["relationships"].get("customers").is_none(), "only what was asked");
}

async fn included_units_carry_their_own_relationships_when_asked(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let path = format!(
        "/company-users/{SONIA}?include=company-business-units,company-business-unit-addresses"
    );
    let answer = app.get_as(&path, Some(&token)).await;
    assert_ok(&answer);
    assert_eq!(
        answer.body["data"]["relationships"],
        json!({"company-business-units": linkage("company-business-units", &[HR_UNIT])})
    );
    let included = answer.body["included"].as_array().unwrap();
    assert_eq!(included.len(), 2, "{}", answer.body);
    assert_eq!(
        included[0],
        with_relationships(
            hr_unit(&app),
            json!({"company-business-unit-addresses":
                linkage("company-business-unit-addresses", &[HR_ADDRESS])})
        )
    );
    assert_eq!(included[1]["type"], "company-business-unit-addresses");
    assert_eq!(included[1]["id"], HR_ADDRESS);
    assert_eq!(included[1]["attributes"]["address1"], "Kirncher Str.");

    // Addresses of units that are not included are not reachable from company users.
    let path = format!("/company-users/{SONIA}?include=company-business-unit-addresses");
    let answer = app.get_as(&path, Some(&token)).await;
    assert_ok(&answer);
    assert!(answer.body["data"].get("relationships").is_none(), "{}", answer.body);
    assert!(answer.body.get("included").is_none(), "{}", answer.body);
}

async fn unknown_include_names_are_ignored_and_nothing_asked_means_no_keys(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    for path in [
        format!("/company-users/{SONIA}?include=carts,wishlists"),
        format!("/company-users/{SONIA}?include="),
        format!("/company-users/{SONIA}"),
    ] {
        let answer = app.get_as(&path, Some(&token)).await;
        assert_ok(&answer);
        assert_eq!(answer.body, json!({"data": company_users_resource(&app, SONIA, true, false)}));
    }
    let answer =
        app.get_as(&format!("/company-users/{SONIA}?include=carts,customers"), Some(&token)).await;
    assert_eq!(
        answer.body["data"]["relationships"],
        json!({"customers": linkage("customers", &["DE--21"])})
    );
    assert_eq!(answer.body["included"].as_array().unwrap().len(), 1);
}

async fn sonia_reads_one_company_user_of_her_company(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let answer = app.get_as(&format!("/company-users/{TREVER}"), Some(&token)).await;
    assert_ok(&answer);
    assert_eq!(answer.body, json!({"data": company_users_resource(&app, TREVER, true, false)}));
}

async fn sonia_reads_her_company(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let mine = app.get_as("/companies/mine", Some(&token)).await;
    assert_ok(&mine);
    assert_eq!(
        mine.body,
        json!({"data": [acme(&app)], "links": {"self": app.url("/companies/mine")}})
    );
    let one = app.get_as(&format!("/companies/{ACME}"), Some(&token)).await;
    assert_ok(&one);
    assert_eq!(one.body, json!({"data": acme(&app)}));
    // A plain customer token carries her default company user: the same company.
    let (customer_token, _) = app.tokens_of("sonia@acme.com").await;
    let mine = app.get_as("/companies/mine", Some(&customer_token)).await;
    assert_eq!(mine.body["data"][0]["id"], ACME);
}

async fn sonia_reads_business_units_with_their_company_and_addresses(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let mine = app.get_as("/company-business-units/mine", Some(&token)).await;
    assert_ok(&mine);
    assert_eq!(
        mine.body,
        json!({"data": [hr_unit(&app)], "links": {"self": app.url("/company-business-units/mine")}})
    );

    let path = format!(
        "/company-business-units/{HQ_UNIT}?include=companies,company-business-unit-addresses"
    );
    let one = app.get_as(&path, Some(&token)).await;
    assert_ok(&one);
    let hq_addresses = [
        HQ_ADDRESS,
        "8bdade41-62c1-5513-a0dc-7c542b9856ca",
        "36ea3c09-6937-5722-9c0d-a1ab52ee2239",
    ];
    assert_eq!(one.body["data"]["id"], HQ_UNIT);
    assert_eq!(one.body["data"]["attributes"]["name"], "Acme Corporation");
    assert_eq!(one.body["data"]["attributes"]["defaultBillingAddress"], Value::Null);
    assert_eq!(
        one.body["data"]["relationships"],
        json!({
            "companies": linkage("companies", &[ACME]),
            "company-business-unit-addresses":
                linkage("company-business-unit-addresses", &hq_addresses),
        })
    );
    let included = one.body["included"].as_array().unwrap();
    assert_eq!(included.len(), 4, "{}", one.body);
    assert_eq!(included[0], acme(&app));
    assert_eq!(included[1], hq_address(&app));
    assert_eq!(included[2]["id"], hq_addresses[1]);
    assert_eq!(included[3]["id"], hq_addresses[2]);

    // The default billing address is given by its uuid.
    use entity::{company_business_unit as unit, company_unit_address as address};
    let hq = unit::Entity::find()
        .filter(unit::Column::Uuid.eq(HQ_UNIT.parse::<uuid::Uuid>().unwrap()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let billing = address::Entity::find()
        .filter(address::Column::Uuid.eq(HQ_ADDRESS.parse::<uuid::Uuid>().unwrap()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    unit::ActiveModel {
        id: Set(hq.id),
        default_billing_address_id: Set(Some(billing.id)),
        ..Default::default()
    }
    .update(&app.db)
    .await
    .unwrap();
    let one = app.get_as(&format!("/company-business-units/{HQ_UNIT}"), Some(&token)).await;
    assert_eq!(one.body["data"]["attributes"]["defaultBillingAddress"], HQ_ADDRESS);
    assert!(one.body["data"].get("relationships").is_none() && one.body.get("included").is_none());
}

async fn sonia_reads_roles_and_an_address_of_her_company(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let mine = app.get_as("/company-roles/mine", Some(&token)).await;
    assert_ok(&mine);
    assert_eq!(
        mine.body,
        json!({
            "data": [role(&app, ADMIN, "Admin", false), role(&app, BUYER, "Buyer", true)],
            "links": {"self": app.url("/company-roles/mine")},
        })
    );
    let one =
        app.get_as(&format!("/company-roles/{APPROVER}?include=companies"), Some(&token)).await;
    assert_ok(&one);
    assert_eq!(
        one.body,
        json!({
            "data": with_relationships(
                role(&app, APPROVER, "Approver", false),
                json!({"companies": linkage("companies", &[ACME])})
            ),
            "included": [acme(&app)],
        })
    );
    let address =
        app.get_as(&format!("/company-business-unit-addresses/{HQ_ADDRESS}"), Some(&token)).await;
    assert_ok(&address);
    assert_eq!(address.body, json!({"data": hq_address(&app)}));
}

async fn company_users_mine_lists_only_memberships_that_can_be_entered(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (anne, _) = app.tokens_of("anne.boleyn@acme.com").await;
    let answer = app.get_as("/company-users/mine", Some(&anne)).await;
    assert_ok(&answer);
    // Initech is pending: that membership is not listed.
    assert_eq!(
        answer.body,
        json!({
            "data": [
                company_users_resource(&app, ANNE_ACME, true, false),
                company_users_resource(&app, ANNE_BOB, true, true),
            ],
            "links": {"self": app.url("/company-users/mine")},
        })
    );
    // The listing is remembered now: an unknown `include` (ignored) gets the same data,
    // and `links.self` is still this request's own path and query.
    let again = app.get_as("/company-users/mine?include=nothing", Some(&anne)).await;
    assert_ok(&again);
    assert_eq!(again.body["data"], answer.body["data"]);
    assert_eq!(
        again.body["links"],
        json!({"self": app.url("/company-users/mine?include=nothing")})
    );
    assert!(again.body.get("included").is_none(), "{}", again.body);
    // Everything listed can be entered.
    for id in [ANNE_ACME, ANNE_BOB] {
        company_user_token(&app, "anne.boleyn@acme.com", id).await;
    }
    let answer = app.get_as("/company-users/mine?include=companies", Some(&anne)).await;
    let companies: Vec<&str> = answer.body["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(companies, ["Acme Corporation", "BoB-Hotel Mitte"]);

    // Karl's BoB-Hotel membership is inactive.
    let (karl, _) = app.tokens_of("karl@acme.com").await;
    let answer = app.get_as("/company-users/mine", Some(&karl)).await;
    assert_eq!(ids(&answer), ["46355100-0a82-5fdb-896e-5c0ce70de816"]);
}

async fn trever_without_the_permission_gets_1405_on_the_directory(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = company_user_token(&app, "Trever.m@acme.com", TREVER).await;
    for path in [
        "/company-users".to_owned(),
        format!("/company-users/{SONIA}"),
        format!("/company-users/{TREVER}"),
    ] {
        app.get_as(&path, Some(&token)).await.assert_error(403, Some("1405"), "Forbidden");
    }
    // His own memberships and company remain readable.
    assert_eq!(ids(&app.get_as("/company-users/mine", Some(&token)).await), [TREVER]);
    assert_eq!(ids(&app.get_as("/companies/mine", Some(&token)).await), [ACME]);
}

async fn bill_without_a_company_gets_no_context_for_mine_and_finds_no_resource_by_id(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (token, _) = app.tokens_of("bill.martin@acme.com").await;
    let cases = [
        ("/company-users".to_owned(), "1403"),
        (format!("/company-users/{SONIA}"), "1403"),
        ("/companies/mine".to_owned(), "1803"),
        ("/company-business-units/mine".to_owned(), "1903"),
        ("/company-roles/mine".to_owned(), "2103"),
        // Valid paging values do not change that.
        ("/company-users?page[limit]=2".to_owned(), "1403"),
    ];
    for (path, code) in cases {
        app.get_as(&path, Some(&token)).await.assert_error(403, Some(code), NO_CONTEXT);
    }
    // A resource by id is in no company of his, so it is not found, as Spryker answers.
    let by_id = [
        (format!("/companies/{ACME}"), "1801", "Company not found."),
        (format!("/company-business-units/{HR_UNIT}"), "1901", "Company business unit not found."),
        (format!("/company-roles/{ADMIN}"), "2101", "Company role not found."),
        (
            format!("/company-business-unit-addresses/{HQ_ADDRESS}"),
            "2001",
            "Company business unit address not found.",
        ),
    ];
    for (path, code, detail) in by_id {
        app.get_as(&path, Some(&token)).await.assert_error(404, Some(code), detail);
    }
    // Bad paging values are refused before the company context is looked at.
    app.get_as("/company-users?page[limit]=0", Some(&token)).await.assert_error(
        400,
        None,
        "Pagination parameters are invalid.",
    );
    let mine = app.get_as("/company-users/mine", Some(&token)).await;
    assert_ok(&mine);
    assert_eq!(mine.body, json!({"data": [], "links": {"self": app.url("/company-users/mine")}}));
}

async fn resources_of_another_company_are_not_found_and_its_users_are_forbidden(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let get = |path: String| {
        let (app, token) = (&app, token.clone());
        async move { app.get_as(&path, Some(&token)).await }
    };
    get(format!("/companies/{BOB_HOTEL}")).await.assert_error(
        404,
        Some("1801"),
        "Company not found.",
    );
    get(format!("/company-business-units/{BOB_UNIT}")).await.assert_error(
        404,
        Some("1901"),
        "Company business unit not found.",
    );
    get(format!("/company-roles/{BOB_ADMIN}")).await.assert_error(
        404,
        Some("2101"),
        "Company role not found.",
    );
    get(format!("/company-business-unit-addresses/{BOB_ADDRESS}")).await.assert_error(
        404,
        Some("2001"),
        "Company business unit address not found.",
    );
    get(format!("/company-users/{ANNE_BOB}")).await.assert_error(403, Some("1403"), NO_CONTEXT);
}

async fn unknown_and_malformed_ids_are_not_found(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    let cases = [
        ("company-users", "1404", "Company user not found"),
        ("companies", "1801", "Company not found."),
        ("company-business-units", "1901", "Company business unit not found."),
        ("company-roles", "2101", "Company role not found."),
        ("company-business-unit-addresses", "2001", "Company business unit address not found."),
    ];
    for (ty, code, detail) in cases {
        for id in [unknown, "not-a-uuid", "62de4ab6b7685c218835455d9f341625"] {
            let answer = app.get_as(&format!("/{ty}/{id}"), Some(&token)).await;
            answer.assert_error(404, Some(code), detail);
        }
    }
}

async fn a_removed_permission_applies_to_the_next_request(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    assert_eq!(app.get_as("/company-users", Some(&token)).await.status, 200);
    use entity::{company_role, company_role_permission as permission};
    let admin = company_role::Entity::find()
        .filter(company_role::Column::Uuid.eq(ADMIN.parse::<uuid::Uuid>().unwrap()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let removed = permission::Entity::delete_many()
        .filter(permission::Column::RoleId.eq(admin.id))
        .filter(permission::Column::PermissionKey.eq("SeeCompanyUsersPermissionPlugin"))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(removed.rows_affected, 1);
    app.get_as("/company-users", Some(&token)).await.assert_error(403, Some("1405"), "Forbidden");
    app.get_as(&format!("/company-users/{SONIA}"), Some(&token)).await.assert_error(
        403,
        Some("1405"),
        "Forbidden",
    );
}

async fn a_deactivated_membership_loses_its_company_context_at_once(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    assert_eq!(app.get_as("/company-roles/mine", Some(&token)).await.status, 200);
    assert_eq!(ids(&app.get_as("/company-users/mine", Some(&token)).await), [SONIA]);
    glue_auth::service::directory::set_company_user_active(&app.db, SONIA.parse().unwrap(), false)
        .await
        .unwrap();
    app.get_as("/company-users", Some(&token)).await.assert_error(403, Some("1403"), NO_CONTEXT);
    app.get_as("/companies/mine", Some(&token)).await.assert_error(403, Some("1803"), NO_CONTEXT);
    app.get_as("/company-roles/mine", Some(&token)).await.assert_error(
        403,
        Some("2103"),
        NO_CONTEXT,
    );
    // Nor is the membership listed among hers once the listing's bound has passed.
    tokio::time::sleep(crate::helpers::listing_max_age()).await;
    assert!(ids(&app.get_as("/company-users/mine", Some(&token)).await).is_empty());
}

async fn the_listing_follows_directory_changes_within_its_bound(db: Db, test: &str) {
    use glue_auth::service::directory;
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (anne, _) = app.tokens_of("anne.boleyn@acme.com").await;
    // Each change is made while her listing is remembered, by a write to the database the
    // listing's cache does not see; the listing must show it once its bound has passed.
    let listed = async || {
        let answer = app.get_as("/company-users/mine", Some(&anne)).await;
        assert_ok(&answer);
        let data = answer.body["data"].as_array().unwrap().clone();
        data.iter()
            .map(|u| (u["id"].as_str().unwrap().to_owned(), u["attributes"]["isDefault"] == true))
            .collect::<Vec<_>>()
    };
    let after_the_bound = async |expected: &[(&str, bool)], change: &str| {
        tokio::time::sleep(crate::helpers::listing_max_age()).await;
        let expected: Vec<_> = expected.iter().map(|(id, d)| ((*id).to_owned(), *d)).collect();
        assert_eq!(listed().await, expected, "after {change}");
    };
    assert_eq!(listed().await.len(), 2);
    directory::set_default_company_user_by_uuid(&app.db, ANNE_ACME.parse().unwrap()).await.unwrap();
    after_the_bound(&[(ANNE_ACME, true), (ANNE_BOB, false)], "a new default").await;
    directory::set_company_status(&app.db, BOB_HOTEL.parse().unwrap(), None, Some(false))
        .await
        .unwrap();
    after_the_bound(&[(ANNE_ACME, true)], "her other company deactivated").await;
    directory::set_company_status(&app.db, INITECH.parse().unwrap(), Some("approved"), None)
        .await
        .unwrap();
    after_the_bound(&[(ANNE_ACME, true), (ANNE_INITECH, false)], "a company approved").await;
    directory::set_company_user_active(&app.db, ANNE_ACME.parse().unwrap(), false).await.unwrap();
    after_the_bound(&[(ANNE_INITECH, false)], "a membership deactivated").await;
    directory::set_customer_active(&app.db, "anne.boleyn@acme.com", false).await.unwrap();
    after_the_bound(&[], "her account deactivated").await;
}

async fn the_company_user_token_chooses_which_company_is_read(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // Anne's customer token carries her default membership: BoB-Hotel, where she is Admin.
    let (customer_token, _) = app.tokens_of("anne.boleyn@acme.com").await;
    assert_eq!(ids(&app.get_as("/companies/mine", Some(&customer_token)).await), [BOB_HOTEL]);
    let bob_users = app.get_as("/company-users", Some(&customer_token)).await;
    assert_eq!(
        bob_users.body["data"],
        json!([
            company_users_resource(&app, ANNE_BOB, true, true),
            company_users_resource(&app, "8f1d1646-13a6-5d2a-9b1e-ff093c406509", false, false),
        ])
    );
    assert_eq!(ids(&app.get_as("/company-roles/mine", Some(&customer_token)).await).len(), 2);

    // As her Acme company user (no roles) she reads Acme but may not list its users.
    let acme_token = company_user_token(&app, "anne.boleyn@acme.com", ANNE_ACME).await;
    assert_eq!(ids(&app.get_as("/companies/mine", Some(&acme_token)).await), [ACME]);
    assert_eq!(
        ids(&app.get_as("/company-business-units/mine", Some(&acme_token)).await),
        [HQ_UNIT]
    );
    assert!(ids(&app.get_as("/company-roles/mine", Some(&acme_token)).await).is_empty());
    app.get_as("/company-users", Some(&acme_token)).await.assert_error(
        403,
        Some("1405"),
        "Forbidden",
    );
}

async fn every_endpoint_needs_a_token(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let paths = [
        "/company-users/mine".to_owned(),
        "/company-users".to_owned(),
        format!("/company-users/{SONIA}"),
        "/companies/mine".to_owned(),
        format!("/companies/{ACME}"),
        "/company-business-units/mine".to_owned(),
        format!("/company-business-units/{HR_UNIT}"),
        "/company-roles/mine".to_owned(),
        format!("/company-roles/{ADMIN}"),
        format!("/company-business-unit-addresses/{HQ_ADDRESS}"),
    ];
    for path in &paths {
        app.get_as(path, None).await.assert_error(403, Some("002"), "Missing access token.");
        app.get_as(path, Some("not.a.token")).await.assert_error(
            401,
            Some("001"),
            "Invalid access token.",
        );
    }
    // Token checks come before paging.
    app.get_as("/company-users?page[limit]=0", None).await.assert_error(
        403,
        Some("002"),
        "Missing access token.",
    );
}

async fn the_bare_collections_are_protected_and_not_implemented(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let token = sonia(&app).await;
    for collection in [
        "/companies",
        "/company-business-units",
        "/company-roles",
        "/company-business-unit-addresses",
    ] {
        for path in [collection.to_owned(), format!("{collection}/")] {
            app.get_as(&path, None).await.assert_error(403, Some("002"), "Missing access token.");
            app.get_as(&path, Some("not.a.token")).await.assert_error(
                401,
                Some("001"),
                "Invalid access token.",
            );
            let answer = app.get_as(&path, Some(&token)).await;
            answer.assert_error(501, None, "Resource is not implemented.");
            assert_eq!(
                answer.body,
                json!({"errors": [{"status": 501, "detail": "Resource is not implemented."}]})
            );
        }
    }
}
