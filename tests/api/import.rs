//! Datasets: the demo, the import's all-or-nothing transaction, line numbers on bad rows.

use entity::prelude::*;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::helpers::{Db, TestApp, on_both_databases};
use glue_auth::{dataset, service::password_policy::PasswordPolicy};

on_both_databases!(
    the_demo_dataset_loads_with_its_uuids,
    loading_the_demo_twice_reuses_the_data,
    a_file_with_one_bad_row_changes_nothing_and_names_the_line,
    a_password_outside_the_policy_is_refused_by_its_row,
    an_e_mail_differing_only_in_case_is_refused,
    a_json_dataset_imports_too,
    gender_and_date_of_birth_are_imported_and_checked,
    rows_can_refer_to_data_already_in_the_database_by_uuid,
    a_company_user_cannot_have_a_unit_or_role_of_another_company,
    migrations_go_down_and_up_again,
);

/// Rows per table: customers, companies, units, addresses, roles, company users. (Customers
/// by id only: the migrations test counts them with the newest column gone too.)
async fn counts(db: &DatabaseConnection) -> [u64; 6] {
    [
        Customer::find()
            .select_only()
            .column(entity::customer::Column::Id)
            .count(db)
            .await
            .unwrap(),
        Company::find().count(db).await.unwrap(),
        CompanyBusinessUnit::find().count(db).await.unwrap(),
        CompanyUnitAddress::find().count(db).await.unwrap(),
        CompanyRole::find().count(db).await.unwrap(),
        CompanyUser::find().count(db).await.unwrap(),
    ]
}

async fn the_demo_dataset_loads_with_its_uuids(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    assert_eq!(counts(&app.db).await, [14, 3, 9, 5, 7, 15]);
    let sonia = glue_auth::service::directory::find_customer(&app.db, "SONIA@acme.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sonia.customer_reference, "DE--21");
    assert!(glue_auth::auth::password::verify(
        &glue_auth::auth::password::Password::new("change123"),
        sonia.password_hash.as_deref()
    ));
    let sonias = entity::company_user::Entity::find()
        .filter(entity::company_user::Column::CustomerId.eq(sonia.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(sonias.len(), 1);
    assert_eq!(sonias[0].uuid.to_string(), "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac");
    let anne =
        glue_auth::service::directory::find_customer(&app.db, "DE--7").await.unwrap().unwrap();
    let defaults: Vec<_> = entity::company_user::Entity::find()
        .filter(entity::company_user::Column::CustomerId.eq(anne.id))
        .filter(entity::company_user::Column::IsDefault.eq(true))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].uuid.to_string(), "c7c148a6-5181-5ac4-b2a7-1bf91242ab12");
    let lena = glue_auth::service::directory::find_customer(&app.db, "lena.inactive@acme.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!lena.is_active);
}

async fn loading_the_demo_twice_reuses_the_data(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    assert!(glue_auth::admin::load_demo(&app.db).await.unwrap());
    assert!(!glue_auth::admin::load_demo(&app.db).await.unwrap());
    assert_eq!(counts(&app.db).await, [14, 3, 9, 5, 7, 15]);
}

const BAD_ROW: &str = "\
companies:
  - {key: c1, name: Good Company, status: approved}
business_units:
  - {key: u1, company: c1, name: Head Office}
customers:
  - {reference: DE--1, email: one@example.com, password: a-secret-of-one}
company_users:
  - {customer: DE--1, company: c1, business_unit: u1}
  - customer: DE--99
    company: c1
";

async fn a_password_outside_the_policy_is_refused_by_its_row(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let text = "customers:\n  - {reference: DE--1, email: one@example.com, password: long-enough-one}\n  - {reference: DE--2, email: two@example.com, password: short}\n";
    let err = dataset::import_text(&app.db, text, &PasswordPolicy::DEFAULT).await.unwrap_err();
    assert_eq!((err.line, err.location.as_str()), (Some(3), "customers[1]"), "{err}");
    assert!(err.message.contains("12 characters or more"), "{err}");
    assert_eq!(counts(&app.db).await, [0; 6], "nothing of the file stays");
    // The same file under a policy it meets imports.
    let relaxed = PasswordPolicy { min_chars: 5, max_chars: 128 };
    assert_eq!(dataset::import_text(&app.db, text, &relaxed).await.unwrap().customers, 2);
}

async fn a_file_with_one_bad_row_changes_nothing_and_names_the_line(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let err = dataset::import_text(&app.db, BAD_ROW, &PasswordPolicy::DEFAULT).await.unwrap_err();
    assert_eq!(err.line, Some(9), "{err}");
    assert_eq!(err.location, "company_users[1]");
    assert!(
        err.to_string().starts_with("line 9: company_users[1]: customer `DE--99` does not exist"),
        "{err}"
    );
    assert_eq!(counts(&app.db).await, [0; 6], "nothing of the file stays");

    // A type error is named by serde's own line.
    let err = dataset::import_text(
        &app.db,
        "companies:\n  - {name: X, active: maybe}\n",
        &PasswordPolicy::DEFAULT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    let err = dataset::import_text(
        &app.db,
        "companies:\n  - {name: X, colour: red}\n",
        &PasswordPolicy::DEFAULT,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    let err = dataset::import_text(
        &app.db,
        "companies:\n  - {name: X, status: secret}\n",
        &PasswordPolicy::DEFAULT,
    )
    .await
    .unwrap_err();
    assert_eq!((err.line, err.location.as_str()), (Some(2), "companies[0]"), "{err}");
    assert_eq!(counts(&app.db).await, [0; 6]);
}

async fn an_e_mail_differing_only_in_case_is_refused(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let text = "customers:\n  - {reference: A-1, email: Same@Example.com}\n  - {reference: A-2, email: same@example.COM}\n";
    let err = dataset::import_text(&app.db, text, &PasswordPolicy::DEFAULT).await.unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.message.contains("already exists"), "{err}");
    assert_eq!(counts(&app.db).await, [0; 6]);
}

async fn a_json_dataset_imports_too(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let text = r#"{
  "companies": [{"key": "c", "name": "Json Inc", "status": "pending", "active": true}],
  "roles": [{"key": "r", "company": "c", "name": "Admin", "permissions": ["SeeCompanyUsersPermissionPlugin"]}]
}"#;
    let summary = dataset::import_text(&app.db, text, &PasswordPolicy::DEFAULT).await.unwrap();
    assert_eq!((summary.companies, summary.roles), (1, 1));
    let err = dataset::import_text(
        &app.db,
        "{\"roles\": [\n {\"company\": \"nope\", \"name\": \"X\"}\n]}",
        &PasswordPolicy::DEFAULT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
}

async fn rows_can_refer_to_data_already_in_the_database_by_uuid(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let text = "\
roles:
  - {key: auditor, company: 62de4ab6-b768-5c21-8835-455d9f341625, name: Auditor, permissions: [SeeCompanyUsersPermissionPlugin]}
company_users:
  - {customer: bill.martin@acme.com, company: 62de4ab6-b768-5c21-8835-455d9f341625, business_unit: ff1c18c9-fb5d-514d-9358-79887ed6d5c6, roles: [auditor], default: true}
";
    let summary = dataset::import_text(&app.db, text, &PasswordPolicy::DEFAULT).await.unwrap();
    assert_eq!((summary.roles, summary.company_users, summary.created.len()), (1, 1, 2));
    // A second membership in the same company (another role, say) is one more company
    // user, as in Spryker.
    let again = dataset::import_text(
        &app.db,
        &text.replace("Auditor", "Auditor 2"),
        &PasswordPolicy::DEFAULT,
    )
    .await
    .unwrap();
    assert_eq!((again.roles, again.company_users), (1, 1));
    let bills = entity::company_user::Entity::find()
        .filter(
            entity::company_user::Column::CustomerId.eq(
                glue_auth::service::directory::find_customer(&app.db, "bill.martin@acme.com")
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            ),
        )
        .all(&app.db)
        .await
        .unwrap();
    let company = uuid::Uuid::parse_str("62de4ab6-b768-5c21-8835-455d9f341625").unwrap();
    let company_id = entity::company::Entity::find()
        .filter(entity::company::Column::Uuid.eq(company))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(bills.iter().filter(|u| u.company_id == company_id).count() >= 2, "{bills:?}");
}

async fn a_company_user_cannot_have_a_unit_or_role_of_another_company(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let before = counts(&app.db).await;
    // bu5 (BoB-Hotel's unit) used with Acme.
    let text = "company_users:\n  - {customer: DE--4, company: 62de4ab6-b768-5c21-8835-455d9f341625, business_unit: 8e29e1d1-e4a0-5a6c-a386-5439cc0bf026}\n";
    let err = dataset::import_text(&app.db, text, &PasswordPolicy::DEFAULT).await.unwrap_err();
    assert!(err.message.contains("belongs to another company"), "{err}");
    assert_eq!(counts(&app.db).await, before);
}

async fn migrations_go_down_and_up_again(db: Db, test: &str) {
    use migration::{MigratorTrait, SchemaManager};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let indexes = async || {
        let schema = SchemaManager::new(&app.db);
        let mut present = Vec::new();
        for name in [
            "ix_refresh_token_customer_family",
            "ix_refresh_token_family",
            "ix_refresh_token_customer",
        ] {
            if schema.has_index("refresh_token", name).await.unwrap() {
                present.push(name);
            }
        }
        present
    };
    assert!(indexes().await.is_empty(), "{:?}", indexes().await);
    // Sonia revokes all her tokens: the number it leaves on her customer row is written into
    // her tokens' rows when the last migration goes down.
    let (sonia, revoked) = app.tokens_of("sonia@acme.com").await;
    assert_eq!(app.delete_as("/refresh-tokens/mine", Some(&sonia)).await.status, 204);
    let before = counts(&app.db).await;
    let all_revoked = async || {
        let rows = RefreshToken::find().all(&app.db).await.unwrap();
        !rows.is_empty() && rows.iter().all(|row| row.revoked_at.is_some())
    };
    assert!(!all_revoked().await, "until then, only the number marks them");
    // The newest migration takes the agents and their refresh tokens away.
    let schema = SchemaManager::new(&app.db);
    for table in ["agent", "agent_refresh_token"] {
        assert!(schema.has_table(table).await.unwrap(), "{table}");
    }
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    for table in ["agent", "agent_refresh_token"] {
        assert!(!schema.has_table(table).await.unwrap(), "{table}");
    }
    // The one before takes the imported password digest away, and makes a customer's
    // company users unique per company again.
    assert!(schema.has_column("customer", "imported_password_digest").await.unwrap());
    assert!(schema.has_index("company_user", "ix_company_user_customer_company").await.unwrap());
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    assert!(!schema.has_column("customer", "imported_password_digest").await.unwrap());
    assert!(schema.has_index("company_user", "uq_company_user_customer_company").await.unwrap());
    assert!(!schema.has_index("company_user", "ix_company_user_customer_company").await.unwrap());
    // The one before takes the password restore keys away.
    assert!(schema.has_table("password_restore_key").await.unwrap());
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    assert!(!schema.has_table("password_restore_key").await.unwrap());
    // The one before takes the customer's gender, date of birth and last change away.
    for column in ["gender", "date_of_birth", "updated_at"] {
        assert!(schema.has_column("customer", column).await.unwrap(), "{column}");
    }
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    for column in ["gender", "date_of_birth", "updated_at"] {
        assert!(!schema.has_column("customer", column).await.unwrap(), "{column}");
    }
    // The one before takes the column of pending login attempts away.
    assert!(schema.has_column("login_attempt", "pending").await.unwrap());
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    assert!(!schema.has_column("login_attempt", "pending").await.unwrap());
    // The one before takes the directory's version away, and its triggers with it: the
    // directory can still be changed.
    assert!(schema.has_table("directory_version").await.unwrap());
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    assert!(!schema.has_table("directory_version").await.unwrap());
    // (In SQL: the entities already have the columns of the newest migration.)
    for active in [false, true] {
        let stmt = sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            format!("UPDATE customer SET is_active = {active} WHERE email = 'karl@acme.com'"),
        );
        sea_orm::ConnectionTrait::execute_raw(&app.db, stmt)
            .await
            .expect("no trigger is left behind");
    }
    // The two before it, one at a time, down and up: their indexes come and go, the data
    // stays.
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    assert_eq!(indexes().await, ["ix_refresh_token_customer_family"]);
    assert_eq!(counts(&app.db).await, before);
    assert!(all_revoked().await);
    migration::Migrator::down(&app.db, Some(1)).await.unwrap();
    assert_eq!(indexes().await, ["ix_refresh_token_family", "ix_refresh_token_customer"]);
    assert_eq!(counts(&app.db).await, before);
    migration::Migrator::up(&app.db, None).await.unwrap();
    assert!(indexes().await.is_empty());
    assert_eq!(counts(&app.db).await, before);
    app.refresh(&revoked).await.assert_error(401, Some("004"), "Failed to refresh token.");
    assert_eq!(app.refresh(&app.tokens_of("sonia@acme.com").await.1).await.status, 201);
    // Everything down, then up again.
    migration::Migrator::down(&app.db, None).await.unwrap();
    assert!(Customer::find().count(&app.db).await.is_err(), "the tables are gone");
    migration::Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(counts(&app.db).await, [0; 6]);
}

async fn gender_and_date_of_birth_are_imported_and_checked(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let text = "customers:\n  - {reference: A-1, email: a@example.com, gender: Female, date_of_birth: 1990-05-17}\n  - {reference: A-2, email: b@example.com}\n";
    dataset::import_text(&app.db, text, &PasswordPolicy::DEFAULT).await.unwrap();
    let mut rows = Customer::find().all(&app.db).await.unwrap();
    rows.sort_by(|a, b| a.customer_reference.cmp(&b.customer_reference));
    let profiles: Vec<_> =
        rows.iter().map(|c| (c.gender.as_deref(), c.date_of_birth.as_deref())).collect();
    assert_eq!(profiles, [(Some("Female"), Some("1990-05-17")), (None, None)]);
    assert!(rows.iter().all(|c| c.updated_at == c.created_at && c.created_at > 0));
    let before = counts(&app.db).await;
    for (row, wrong) in [
        ("{reference: B-1, email: c@example.com, gender: male}", "`gender`"),
        ("{reference: B-1, email: c@example.com, date_of_birth: 1990-02-30}", "`date_of_birth`"),
        ("{reference: B-1, email: c@example.com, date_of_birth: 17.05.1990}", "`date_of_birth`"),
    ] {
        let text =
            format!("customers:\n  - {{reference: B-0, email: ok@example.com}}\n  - {row}\n");
        let err = dataset::import_text(&app.db, &text, &PasswordPolicy::DEFAULT).await.unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains(wrong), "{err}");
        assert_eq!(counts(&app.db).await, before, "nothing of {row} is written");
    }
}
