//! Several instances: two `glue-auth serve` processes on one PostgreSQL
//! database and the same signing key (one data directory) behave as one service: tokens
//! issued by one work on the other, a refresh race through both has one winner, reuse
//! detected through either revokes the family for both, and login blocking counts the
//! attempts made through both, however many arrive at once. PostgreSQL only: that is how several instances are deployed.

use crate::crash::process::{Api, Service, demo_database, refresh_body};
use crate::helpers::{Answer, Db};

const SONIA: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
const REFRESH_FAILED: &str = "Failed to refresh token.";
const BLOCKED: &str =
    "Too many log in attempts from your address. Please wait 5 minutes before trying again.";
/// Failed logins that block (`--login-block-attempts`), small for the test.
const BLOCK_AFTER: usize = 4;

/// Runs an admin verb of the binary on the database, and checks that it succeeded.
fn admin(database_url: &str, data_dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_glue-auth"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--database-url", database_url, "--log", "warn"])
        .args(args)
        .output()
        .expect("the binary starts");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn login(api: &Api, email: &str) -> (String, String) {
    let answer = api.login(email, "change123").await;
    assert_eq!(answer.status, 201, "login of {email}: {}", answer.body);
    answer.tokens()
}

async fn refreshed(api: &Api, token: &str) -> (String, String) {
    let answer = api.refresh(token).await;
    assert_eq!(answer.status, 201, "refresh: {}", answer.body);
    answer.tokens()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_act_as_one_service() {
    let test = concat!(module_path!(), "::two_instances_on_one_postgres_act_as_one_service");
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let Some(url) = crate::helpers::fresh_database(Db::Postgres, data_dir.path(), test).await
    else {
        return;
    };
    demo_database(&url, data_dir.path()).await;
    // No grace window for refresh reuse: each reuse below is presented right after the
    // rotation, and must revoke through either instance.
    let options =
        ["--login-block-attempts", &BLOCK_AFTER.to_string(), "--refresh-reuse-grace", "0"]
            .map(str::to_owned);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    // One after the other: the first creates the signing key in the data directory, the
    // second finds and uses it.
    let first = Service::start(&url, data_dir.path(), &options).await;
    let second = Service::start(&url, data_dir.path(), &options).await;
    let (a, b) = (first.api(), second.api());
    let jwks = |api: &Api| {
        let api = api.clone();
        async move { api.send(api.request(reqwest::Method::GET, "/.well-known/jwks.json")).await }
    };
    let (jwks_a, jwks_b) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(jwks_a.status, 200);
    assert_eq!(jwks_a.body, jwks_b.body, "both publish the same key");

    // A token issued by one is refreshed by the other; access tokens work on both.
    let (access_a, refresh_a) = login(&a, "sonia@acme.com").await;
    let (access_b, refresh_b) = refreshed(&b, &refresh_a).await;
    for (api, token) in [(&b, &access_a), (&a, &access_b)] {
        let answer = api.get_as("/customers", Some(token)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["data"][0]["id"], "DE--21");
    }
    // The same for company-user tokens: issued by one, used and refreshed on the other.
    let answer = b.company_user_token(&access_a, SONIA).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (company_access, company_refresh) = answer.tokens();
    let answer = a.get_as("/company-users/mine", Some(&company_access)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = a.refresh(&company_refresh).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], SONIA);

    // Ten concurrent refreshes of one token, five through each instance: exactly one wins.
    let racers: Vec<_> = (0..10)
        .map(|i| {
            let api = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = refresh_b.clone();
            tokio::spawn(async move {
                let response = api
                    .try_post("/refresh-tokens", &refresh_body(&token), None)
                    .await
                    .expect("answered");
                Answer::of(response).await
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        let answer = racer.await.expect("a racer");
        if answer.status == 201 {
            winners += 1;
        } else {
            answer.assert_error(401, Some("004"), REFRESH_FAILED);
        }
    }
    assert_eq!(winners, 1, "exactly one of 10 concurrent refreshes through both instances wins");

    // Reuse detected through either instance revokes the family on the other one too.
    for (issuer, other) in [(&a, &b), (&b, &a)] {
        let (_, first_token) = login(issuer, "karl@acme.com").await;
        let (_, second_token) = refreshed(issuer, &first_token).await;
        let (_, latest) = refreshed(other, &second_token).await;
        // The first token, rotated, comes back through the other instance: a reuse.
        other.refresh(&first_token).await.assert_error(401, Some("004"), REFRESH_FAILED);
        issuer.refresh(&latest).await.assert_error(401, Some("004"), REFRESH_FAILED);
        other.refresh(&latest).await.assert_error(401, Some("004"), REFRESH_FAILED);
    }

    // A directory change by a third process (the admin verbs) reaches the listings of both
    // instances within their bound, though both remember Sonia's.
    for api in [&a, &b] {
        let answer = api.get_as("/company-users/mine", Some(&company_access)).await;
        assert_eq!(answer.body["data"][0]["id"], SONIA, "{}", answer.body);
    }
    admin(&url, data_dir.path(), &["company-user", "deactivate", SONIA]);
    tokio::time::sleep(crate::helpers::listing_max_age()).await;
    for api in [&a, &b] {
        let answer = api.get_as("/company-users/mine", Some(&company_access)).await;
        assert_eq!(answer.body["data"], serde_json::json!([]), "{}", answer.body);
    }

    // Login blocking counts the attempts of both, before their checks: 40 guesses at once,
    // 20 through each, check at most the limit in all; then both refuse even the right
    // password. (Last: it blocks the address 127.0.0.1 too.)
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let api = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { api.login("Sarah@acme.com", &format!("guess-{i}")).await })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        let answer = guess.await.expect("a guess");
        match answer.status {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert!(checked <= BLOCK_AFTER, "{checked} guesses were checked; the limit is {BLOCK_AFTER}");
    assert!(checked >= 1);
    for api in [&a, &b] {
        // Blocked even with the right password.
        api.login("Sarah@acme.com", "change123").await.assert_error(429, Some("4401"), BLOCKED);
    }
}
