//! Spryker's password hashes (docs/security.md): bcrypt as Symfony's `NativePasswordHasher`
//! makes it (base64(sha512) first for a password longer than 72 bytes or holding a NUL),
//! imported as they are, verified at login and replaced by Argon2id in the same request.

use base64::{Engine, engine::general_purpose::STANDARD};
use entity::customer;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::helpers::{Db, TestApp, on_both_databases};
use glue_auth::{dataset, service::password_policy::PasswordPolicy};

on_both_databases!(spryker_bcrypt_hashes_log_in_and_become_argon2id);

/// The hash Spryker stores for `password` (at cost 4 here, 12 in Spryker), written the way
/// Symfony's `NativePasswordHasher::hash` reads in PHP.
pub(crate) fn symfony_bcrypt(password: &str) -> String {
    let input = if password.len() > 72 || password.contains('\0') {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, password.as_bytes());
        STANDARD.encode(digest.as_ref())
    } else {
        password.to_owned()
    };
    bcrypt::hash_with_result(input, 4).unwrap().format_for_version(bcrypt::Version::TwoY)
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    customer::Entity::find()
        .filter(customer::Column::EmailNormalized.eq(email))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap()
}

async fn spryker_bcrypt_hashes_log_in_and_become_argon2id(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let long = format!("{}-and-its-tail", "a-long-passphrase ".repeat(5));
    assert!(long.len() > 72);
    let passwords = [
        ("short@x.example", "change123".to_owned()),
        ("long@x.example", long.clone()),
        ("unicode@x.example", "Пароль-密码-🔑-lang".to_owned()),
        ("nul@x.example", "with\0nul".to_owned()),
    ];
    let mut text = String::from("customers:\n");
    for (n, (email, password)) in passwords.iter().enumerate() {
        let hash = symfony_bcrypt(password);
        assert!(hash.starts_with("$2y$04$"), "{hash}");
        text.push_str(&format!(
            "  - {{reference: DE--{n}, email: {email}, password_hash: '{hash}'}}\n"
        ));
    }
    dataset::import_text(&app.db, &text, &PasswordPolicy::DEFAULT).await.unwrap();

    // A long password is not cut at 72 bytes: another tail is another password.
    let other_tail = format!("{}-and-another-tail", "a-long-passphrase ".repeat(5));
    app.login("long@x.example", &other_tail).await.assert_error(
        401,
        Some("003"),
        "Failed to authenticate user.",
    );
    app.login("short@x.example", "change12").await.assert_error(
        401,
        Some("003"),
        "Failed to authenticate user.",
    );
    assert!(
        stored_hash(&app, "short@x.example").await.starts_with("$2y$"),
        "a failed login changes nothing"
    );

    for (email, password) in &passwords {
        if email.starts_with("nul") {
            // JSON carries the NUL; the login checks it like any other character.
            assert!(password.contains('\0'));
        }
        let answer = app.login(email, password).await;
        assert_eq!(answer.status, 201, "{email}: {}", answer.body);
        let upgraded = stored_hash(&app, email).await;
        assert!(upgraded.starts_with("$argon2id$"), "{email}: {upgraded}");
        // The Argon2id hash works from now on, and the old password is still the password.
        assert_eq!(app.login(email, password).await.status, 201, "{email} again");
    }
    // A malformed bcrypt string is refused by the import, naming its row.
    let bad =
        "customers:\n  - {reference: DE--9, email: bad@x.example, password_hash: '$2y$xx$nope'}\n";
    let err = dataset::import_text(&app.db, bad, &PasswordPolicy::DEFAULT).await.unwrap_err();
    assert!(err.to_string().contains("neither an Argon2 PHC string nor a bcrypt hash"), "{err}");
    let audit = super::secrets::lines();
    assert!(audit.iter().any(|l| l.contains("event=\"password_hash_upgraded\"")), "{audit:?}");
}
