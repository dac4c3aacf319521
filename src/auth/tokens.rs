//! Access tokens (docs/wire-contract.md §2.1): signed JWTs that resource servers verify on their
//! own, with the keys of `GET /.well-known/jwks.json`. The claims follow Spryker's layout, `sub`
//! being a JSON *string* that holds JSON, because existing Glue clients and resource
//! servers parse exactly that. Verification trusts nothing in a token before its
//! signature is checked with one of our keys under that key's own algorithm, which rules
//! out `alg: none`, HMAC keyed with a public key and unknown keys alike. Time is an
//! argument, not the system clock, so expiry is testable without waiting.

use aws_lc_rs::rand;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{cache::VerifiedTokens, keys::KeySet};

/// Clock skew tolerated between us and the resource servers on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;

/// The JWT `typ` of access tokens (RFC 9068).
const TYP: &str = "at+jwt";

/// Far larger than any token we issue; spares parsing megabytes sent by a client.
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `POST /access-tokens`: scope `customer`, may carry a default company user.
    Customer,
    /// `POST /company-user-access-tokens`: scope `company_user`, always a company user.
    CompanyUser,
}

impl TokenKind {
    /// The scope tokens of this kind carry (also stored with their refresh tokens).
    pub fn scope(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::CompanyUser => "company_user",
        }
    }
}

/// A sales agent's own token (`POST /agent-access-tokens`, scope `agent`): it speaks for no
/// customer (docs/wire-contract.md §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentIdentity {
    pub agent_id: i32,
}

/// Whoever a valid token speaks for: a customer (or one of its company users), or an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Customer(Identity),
    Agent(AgentIdentity),
}

/// The scope of agent tokens (Spryker's `OauthAgentConnectorConfig::OAUTH_SCOPE_AGENT`).
pub const AGENT_SCOPE: &str = "agent";

/// Who a customer token speaks for: what it is issued from and what verification gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub customer_id: i32,
    pub customer_reference: String,
    pub company_user: Option<Uuid>,
    pub kind: TokenKind,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("a company-user token needs a company user")]
    MissingCompanyUser,
    #[error("cannot encode the access token claims: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the crypto library failed to sign or to produce randomness")]
    Crypto,
}

/// A token that must not be accepted. Deliberately without a reason: callers answer
/// 401/001 whatever it is, and the reason is logged at debug level.
#[derive(Debug, thiserror::Error)]
#[error("invalid access token")]
pub struct InvalidToken;

fn reject(reason: &str) -> InvalidToken {
    // The token itself is a credential and never logged.
    tracing::debug!(reason, "access token rejected");
    InvalidToken
}

/// Issues and verifies access tokens with the keys of a [`KeySet`].
pub struct TokenService {
    keys: KeySet,
    issuer: String,
    audience: String,
    lifetime: i64,
    /// The signing key's header, base64url-encoded once: it never changes.
    encoded_header: String,
    /// One per algorithm in the key set: jsonwebtoken insists that every algorithm a
    /// `Validation` allows belongs to the verifying key's family.
    validations: Vec<(Algorithm, Validation)>,
    /// Tokens verified before (none unless [`TokenService::with_cache`]).
    verified: VerifiedTokens,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("keys", &self.keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: Algorithm,
    typ: &'a str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    sub: &'a str,
    scopes: [&'a str; 1],
}

// Field order matters in the two `sub` layouts: Spryker's clients see the string as is.
#[derive(Serialize)]
struct CustomerSub<'a> {
    id_company_user: Option<Uuid>,
    id_agent: Option<i32>,
    customer_reference: &'a str,
    id_customer: i32,
}

/// Spryker's customer layout with only the agent set.
#[derive(Serialize)]
struct AgentSub {
    id_company_user: Option<Uuid>,
    id_agent: i32,
    customer_reference: Option<&'static str>,
    id_customer: Option<i32>,
}

#[derive(Serialize)]
struct CompanyUserSub<'a> {
    customer_reference: &'a str,
    id_customer: i32,
    id_company_user: Uuid,
}

#[derive(Deserialize)]
struct ReceivedClaims {
    nbf: i64,
    exp: i64,
    sub: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
struct ReceivedAgentSub {
    id_agent: i32,
}

#[derive(Deserialize)]
struct ReceivedSub {
    id_customer: i32,
    customer_reference: String,
    #[serde(default)]
    id_company_user: Option<Uuid>,
}

impl TokenService {
    /// `lifetime` is the access-token lifetime in seconds (`expiresIn`).
    pub fn new(keys: KeySet, issuer: &str, audience: &str, lifetime: u64) -> Self {
        let signing_key = keys.signing_key();
        let header = Header { alg: signing_key.algorithm(), typ: TYP, kid: signing_key.kid() };
        // A struct of an enum and strings always serializes.
        let encoded_header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());

        let mut validations: Vec<(Algorithm, Validation)> = Vec::new();
        for key in keys.keys() {
            let algorithm = key.algorithm();
            if validations.iter().any(|(a, _)| *a == algorithm) {
                continue;
            }
            let mut validation = Validation::new(algorithm);
            // exp and nbf are checked against the caller's clock in `verify`.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.leeway = 0;
            validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            validations.push((algorithm, validation));
        }

        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime: i64::try_from(lifetime).unwrap_or(i64::MAX),
            encoded_header,
            validations,
            verified: VerifiedTokens::new(0),
        }
    }

    /// Remembers up to `capacity` verified tokens (see [`VerifiedTokens`]).
    #[must_use]
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.verified = VerifiedTokens::new(capacity);
        self
    }

    /// The keys, for the JWKS endpoint.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Access-token lifetime in seconds.
    pub fn lifetime(&self) -> i64 {
        self.lifetime
    }

    /// A signed access token for `identity`, valid from `now` for the configured lifetime.
    pub fn issue(&self, identity: &Identity, now: i64) -> Result<String, IssueError> {
        let sub = match identity.kind {
            TokenKind::Customer => serde_json::to_string(&CustomerSub {
                id_company_user: identity.company_user,
                id_agent: None,
                customer_reference: &identity.customer_reference,
                id_customer: identity.customer_id,
            })?,
            TokenKind::CompanyUser => serde_json::to_string(&CompanyUserSub {
                customer_reference: &identity.customer_reference,
                id_customer: identity.customer_id,
                id_company_user: identity.company_user.ok_or(IssueError::MissingCompanyUser)?,
            })?,
        };
        self.sign(&sub, identity.kind.scope(), now)
    }

    /// A signed access token for the agent `agent`, valid from `now`.
    pub fn issue_agent(&self, agent: AgentIdentity, now: i64) -> Result<String, IssueError> {
        let sub = serde_json::to_string(&AgentSub {
            id_company_user: None,
            id_agent: agent.agent_id,
            customer_reference: None,
            id_customer: None,
        })?;
        self.sign(&sub, AGENT_SCOPE, now)
    }

    fn sign(&self, sub: &str, scope: &str, now: i64) -> Result<String, IssueError> {
        let jti = new_jti()?;
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            jti: &jti,
            iat: now,
            nbf: now,
            exp: now.saturating_add(self.lifetime),
            sub,
            scopes: [scope],
        };
        let payload = serde_json::to_vec(&claims)?;

        let mut token = String::with_capacity(self.encoded_header.len() + payload.len() * 2 + 400);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature =
            self.keys.signing_key().sign(token.as_bytes()).map_err(|_| IssueError::Crypto)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// The customer identity of a customer or company-user token we issued that is valid at
    /// `now`; an agent's token is refused here.
    pub fn verify(&self, token: &str, now: i64) -> Result<Identity, InvalidToken> {
        match self.verify_any(token, now)? {
            Principal::Customer(identity) => Ok(identity),
            Principal::Agent(_) => Err(reject("an agent token where a customer's is needed")),
        }
    }

    /// Whom a token we issued that is valid at `now` speaks for.
    pub fn verify_any(&self, token: &str, now: i64) -> Result<Principal, InvalidToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(reject("longer than any token we issue"));
        }
        if let Some(principal) = self.verified.get(token, now) {
            return Ok(principal);
        }
        // Fails for `alg: none` and other algorithms jsonwebtoken does not know.
        let header = jsonwebtoken::decode_header(token).map_err(|_| reject("malformed header"))?;
        let kid = header.kid.as_deref().ok_or_else(|| reject("no kid"))?;
        let key = self.keys.get(kid).ok_or_else(|| reject("unknown kid"))?;
        if header.alg != key.algorithm() {
            return Err(reject("alg is not the algorithm of the kid's key"));
        }
        // RFC 9068 §4 requires `typ`: a JWT without it may be an ID token or another kind.
        if !header.typ.as_deref().is_some_and(is_access_token_typ) {
            return Err(reject("typ is not at+jwt"));
        }
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions we do not implement must fail; we use none.
            return Err(reject("crit header"));
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(algorithm, validation)| {
                (*algorithm == key.algorithm()).then_some(validation)
            })
            .ok_or_else(|| reject("no validation for the key's algorithm"))?;

        let claims = jsonwebtoken::decode::<ReceivedClaims>(token, key.decoding_key(), validation)
            .map_err(|e| {
                tracing::debug!(reason = %e, "access token rejected");
                InvalidToken
            })?
            .claims;

        if now >= claims.exp.saturating_add(LEEWAY_SECONDS) {
            return Err(reject("expired"));
        }
        if claims.nbf > now.saturating_add(LEEWAY_SECONDS) {
            return Err(reject("not yet valid"));
        }
        let refused_from = claims.exp.saturating_add(LEEWAY_SECONDS);
        let kind = match claims.scopes.as_slice() {
            [scope] if scope == "customer" => TokenKind::Customer,
            [scope] if scope == "company_user" => TokenKind::CompanyUser,
            [scope] if scope == AGENT_SCOPE => {
                let sub: ReceivedAgentSub = serde_json::from_str(&claims.sub)
                    .map_err(|_| reject("agent sub is not Spryker's JSON"))?;
                let principal = Principal::Agent(AgentIdentity { agent_id: sub.id_agent });
                self.verified.insert(token, principal.clone(), refused_from);
                return Ok(principal);
            }
            _ => return Err(reject("scopes are not [customer], [company_user] or [agent]")),
        };
        let sub: ReceivedSub =
            serde_json::from_str(&claims.sub).map_err(|_| reject("sub is not Spryker's JSON"))?;
        if kind == TokenKind::CompanyUser && sub.id_company_user.is_none() {
            return Err(reject("company_user token without id_company_user"));
        }
        let principal = Principal::Customer(Identity {
            customer_id: sub.id_customer,
            customer_reference: sub.customer_reference,
            company_user: sub.id_company_user,
            kind,
        });
        self.verified.insert(token, principal.clone(), refused_from);
        Ok(principal)
    }
}

/// RFC 9068 §4: `at+jwt`, or `application/at+jwt`, compared without case (RFC 7515 §4.1.9).
fn is_access_token_typ(typ: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case(TYP)
}

/// 128 random bits, hex.
fn new_jti() -> Result<String, IssueError> {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes).map_err(|_| IssueError::Crypto)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::{encoding::AsDer, hmac};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::*;
    use crate::auth::keys::{
        KeySet, SigningKey,
        tests::{ed25519_pem, es256_pem, key, pkcs8_inner_key, rs256_pkcs8_pem},
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const NOW: i64 = 1_767_225_600;
    const TTL: u64 = 28_800;

    fn service(pems: &[&str]) -> TokenService {
        service_for(pems, "glue-auth", "frontend")
    }

    fn service_for(pems: &[&str], issuer: &str, audience: &str) -> TokenService {
        let keys = KeySet::new(pems.iter().map(|pem| key(pem)).collect()).expect("key set");
        TokenService::new(keys, issuer, audience, TTL)
    }

    fn customer(company_user: Option<Uuid>) -> Identity {
        Identity {
            customer_id: 21,
            customer_reference: "DE--21".to_owned(),
            company_user,
            kind: TokenKind::Customer,
        }
    }

    fn company_user(id: Uuid) -> Identity {
        Identity {
            customer_id: 21,
            customer_reference: "DE--21".to_owned(),
            company_user: Some(id),
            kind: TokenKind::CompanyUser,
        }
    }

    fn company_user_id() -> Uuid {
        Uuid::from_u128(0x5f2e_1a3b_9c4d_4e5f_8a6b_7c8d_9e0f_1a2b)
    }

    fn decode_part(part: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
    }

    fn parts(token: &str) -> Result<(Value, Value), Box<dyn std::error::Error>> {
        let mut parts = token.split('.');
        let header = decode_part(parts.next().ok_or("header")?)?;
        let claims = decode_part(parts.next().ok_or("claims")?)?;
        Ok((header, claims))
    }

    /// A token with any header and claims, signed by `key`, bypassing `issue`.
    fn forge(header: &Value, claims: &Value, key: &SigningKey) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(message.as_bytes()).expect("signing");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn valid_claims() -> Value {
        json!({
            "iss": "glue-auth",
            "aud": "frontend",
            "jti": "00",
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 600,
            "sub": r#"{"id_company_user":null,"id_agent":null,"customer_reference":"DE--21","id_customer":21}"#,
            "scopes": ["customer"],
        })
    }

    #[test]
    fn an_issued_customer_token_verifies_and_round_trips_the_identity() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        for identity in [customer(None), customer(Some(company_user_id()))] {
            let token = tokens.issue(&identity, NOW)?;
            assert_eq!(tokens.verify(&token, NOW)?, identity);
        }
        Ok(())
    }

    #[test]
    fn an_issued_company_user_token_verifies_and_round_trips_the_identity() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let identity = company_user(company_user_id());
        let token = tokens.issue(&identity, NOW)?;
        assert_eq!(tokens.verify(&token, NOW)?, identity);
        Ok(())
    }

    #[test]
    fn a_company_user_token_without_a_company_user_is_not_issued() {
        let tokens = service(&[&es256_pem()]);
        let identity = Identity { company_user: None, ..company_user(company_user_id()) };
        assert!(matches!(tokens.issue(&identity, NOW), Err(IssueError::MissingCompanyUser)));
    }

    #[test]
    fn rs256_and_eddsa_keys_issue_and_verify_tokens() -> TestResult {
        for pem in [rs256_pkcs8_pem(), ed25519_pem()] {
            let tokens = service(&[&pem]);
            let identity = company_user(company_user_id());
            let token = tokens.issue(&identity, NOW)?;
            let (header, _) = parts(&token)?;
            assert_eq!(header["alg"], json!(tokens.keys().signing_key().algorithm()));
            assert_eq!(tokens.verify(&token, NOW)?, identity);
        }
        Ok(())
    }

    #[test]
    fn the_header_names_the_algorithm_the_type_and_the_key() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let token = tokens.issue(&customer(None), NOW)?;
        let (header, _) = parts(&token)?;
        assert_eq!(
            header,
            json!({"alg": "ES256", "typ": "at+jwt", "kid": tokens.keys().signing_key().kid()})
        );
        Ok(())
    }

    #[test]
    fn the_claims_are_spryker_s_with_integer_times_and_a_random_jti() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let token = tokens.issue(&customer(None), NOW)?;
        let (_, claims) = parts(&token)?;
        let mut names: Vec<_> =
            claims.as_object().ok_or("an object")?.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["aud", "exp", "iat", "iss", "jti", "nbf", "scopes", "sub"]);
        assert_eq!(claims["iss"], "glue-auth");
        assert_eq!(claims["aud"], "frontend");
        assert_eq!(claims["iat"], json!(NOW));
        assert_eq!(claims["nbf"], json!(NOW));
        assert_eq!(claims["exp"], json!(NOW + 28_800));
        assert_eq!(claims["scopes"], json!(["customer"]));
        let jti = claims["jti"].as_str().ok_or("jti is a string")?;
        assert_eq!(jti.len(), 32);
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

        let again = tokens.issue(&customer(None), NOW)?;
        assert_ne!(parts(&again)?.1["jti"], claims["jti"]);
        Ok(())
    }

    #[test]
    fn the_sub_claim_is_a_json_string_in_spryker_s_layout() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let id = company_user_id();

        let token = tokens.issue(&customer(Some(id)), NOW)?;
        assert_eq!(
            parts(&token)?.1["sub"],
            json!(format!(
                r#"{{"id_company_user":"{id}","id_agent":null,"customer_reference":"DE--21","id_customer":21}}"#
            ))
        );

        let token = tokens.issue(&customer(None), NOW)?;
        assert_eq!(
            parts(&token)?.1["sub"],
            json!(
                r#"{"id_company_user":null,"id_agent":null,"customer_reference":"DE--21","id_customer":21}"#
            )
        );

        let token = tokens.issue(&company_user(id), NOW)?;
        assert_eq!(
            parts(&token)?.1["sub"],
            json!(format!(
                r#"{{"customer_reference":"DE--21","id_customer":21,"id_company_user":"{id}"}}"#
            ))
        );
        assert_eq!(parts(&token)?.1["scopes"], json!(["company_user"]));
        Ok(())
    }

    #[test]
    fn a_token_expires_after_its_lifetime_and_the_leeway() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let token = tokens.issue(&customer(None), NOW)?;
        let exp = NOW + 28_800;
        assert!(tokens.verify(&token, exp - 1).is_ok());
        assert!(tokens.verify(&token, exp + LEEWAY_SECONDS - 1).is_ok());
        assert!(tokens.verify(&token, exp + LEEWAY_SECONDS).is_err());
        assert!(tokens.verify(&token, exp + 86_400).is_err());
        Ok(())
    }

    #[test]
    fn a_token_from_the_future_is_refused_beyond_the_leeway() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let token = tokens.issue(&customer(None), NOW)?;
        assert!(tokens.verify(&token, NOW - LEEWAY_SECONDS).is_ok());
        assert!(tokens.verify(&token, NOW - LEEWAY_SECONDS - 1).is_err());
        Ok(())
    }

    #[test]
    fn a_token_for_another_audience_or_issuer_fails() -> TestResult {
        let pem = es256_pem();
        let ours = service(&[&pem]);
        let other_audience = service_for(&[&pem], "glue-auth", "backoffice");
        let other_issuer = service_for(&[&pem], "someone-else", "frontend");
        for other in [other_audience, other_issuer] {
            let token = other.issue(&customer(None), NOW)?;
            assert!(other.verify(&token, NOW).is_ok());
            assert!(ours.verify(&token, NOW).is_err());
        }
        Ok(())
    }

    #[test]
    fn missing_registered_claims_fail() {
        let tokens = service(&[&es256_pem()]);
        let key = tokens.keys().signing_key();
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
        assert!(tokens.verify(&forge(&header, &valid_claims(), key), NOW).is_ok());
        for claim in ["iss", "aud", "exp", "nbf", "sub", "scopes"] {
            let mut claims = valid_claims();
            claims.as_object_mut().map(|c| c.remove(claim));
            assert!(tokens.verify(&forge(&header, &claims, key), NOW).is_err(), "without {claim}");
        }
    }

    #[test]
    fn an_audience_array_containing_ours_is_accepted() {
        let tokens = service(&[&es256_pem()]);
        let key = tokens.keys().signing_key();
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
        let mut claims = valid_claims();
        claims["aud"] = json!(["frontend", "other"]);
        assert!(tokens.verify(&forge(&header, &claims, key), NOW).is_ok());
        claims["aud"] = json!(["other"]);
        assert!(tokens.verify(&forge(&header, &claims, key), NOW).is_err());
    }

    #[test]
    fn alg_none_fails() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let kid = tokens.keys().signing_key().kid();
        let claims = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
        for alg in ["none", "None", "NONE"] {
            let header = URL_SAFE_NO_PAD
                .encode(json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string());
            assert!(tokens.verify(&format!("{header}.{claims}."), NOW).is_err());
            // A stolen valid signature does not help either.
            let real = tokens.issue(&customer(None), NOW)?;
            let signature = real.rsplit('.').next().ok_or("signature")?;
            assert!(tokens.verify(&format!("{header}.{claims}.{signature}"), NOW).is_err());
        }
        Ok(())
    }

    #[test]
    fn an_hs256_token_keyed_with_the_public_key_fails() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let key = tokens.keys().signing_key();
        let point = key.decoding_key().try_get_as_bytes()?.to_vec();
        // The classic confusion: the public key as a PEM file, as published elsewhere.
        let public = aws_lc_rs::signature::ParsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            &point,
        )?;
        let spki = crate::auth::keys::pem_encode("PUBLIC KEY", public.as_der()?.as_ref());
        let jwk_json = serde_json::to_string(key.jwk())?;
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "HS256", "typ": "at+jwt", "kid": key.kid()}).to_string()),
            URL_SAFE_NO_PAD.encode(valid_claims().to_string())
        );
        for secret in [point.as_slice(), spki.as_bytes(), jwk_json.as_bytes()] {
            let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message.as_bytes());
            let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(mac));
            assert!(tokens.verify(&token, NOW).is_err());
        }
        Ok(())
    }

    #[test]
    fn a_token_signed_by_a_key_not_in_the_set_fails() -> TestResult {
        let ours = service(&[&es256_pem()]);
        let theirs = service(&[&es256_pem()]);
        let token = theirs.issue(&customer(None), NOW)?;
        assert!(ours.verify(&token, NOW).is_err());

        // Nor does naming our kid help.
        let header =
            json!({"alg": "ES256", "typ": "at+jwt", "kid": ours.keys().signing_key().kid()});
        let forged = forge(&header, &valid_claims(), theirs.keys().signing_key());
        assert!(ours.verify(&forged, NOW).is_err());
        Ok(())
    }

    #[test]
    fn an_alg_other_than_the_key_s_fails() {
        let tokens = service(&[&es256_pem(), &ed25519_pem()]);
        let es = &tokens.keys().keys()[0];
        let ed = &tokens.keys().keys()[1];
        // Correctly signed by the Ed25519 key, but claiming to be ES256 under its kid.
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": ed.kid()});
        assert!(tokens.verify(&forge(&header, &valid_claims(), ed), NOW).is_err());
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ed.kid()});
        assert!(tokens.verify(&forge(&header, &valid_claims(), ed), NOW).is_ok());
        let header = json!({"alg": "ES384", "typ": "at+jwt", "kid": es.kid()});
        assert!(tokens.verify(&forge(&header, &valid_claims(), es), NOW).is_err());
    }

    #[test]
    fn the_header_must_name_a_kid_and_the_access_token_type() {
        let tokens = service(&[&es256_pem()]);
        let key = tokens.keys().signing_key();
        let cases = [
            (json!({"alg": "ES256", "typ": "at+jwt"}), false),
            (json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()}), false),
            (json!({"alg": "ES256", "kid": key.kid()}), false),
            (json!({"alg": "ES256", "typ": "application/AT+JWT", "kid": key.kid()}), true),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid(), "crit": ["exp"]}), false),
        ];
        for (header, accepted) in cases {
            let result = tokens.verify(&forge(&header, &valid_claims(), key), NOW);
            assert_eq!(result.is_ok(), accepted, "{header}");
        }
    }

    #[test]
    fn scopes_and_sub_must_be_what_we_issue() {
        let tokens = service(&[&es256_pem()]);
        let key = tokens.keys().signing_key();
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
        let with = |name: &str, value: Value| {
            let mut claims = valid_claims();
            claims[name] = value;
            tokens.verify(&forge(&header, &claims, key), NOW)
        };
        assert!(with("scopes", json!(["customer", "company_user"])).is_err());
        assert!(with("scopes", json!([])).is_err());
        assert!(with("scopes", json!(["admin"])).is_err());
        assert!(with("scopes", json!("customer")).is_err());
        // A company-user token must name its company user.
        assert!(with("scopes", json!(["company_user"])).is_err());
        // sub must be a string holding JSON, not the JSON itself.
        assert!(with("sub", json!({"id_customer": 21, "customer_reference": "DE--21"})).is_err());
        assert!(with("sub", json!("21")).is_err());
        assert!(with("exp", json!("tomorrow")).is_err());
    }

    #[test]
    fn a_tampered_token_fails() -> TestResult {
        let tokens = service(&[&es256_pem()]);
        let token = tokens.issue(&customer(None), NOW)?;
        let (header, mut claims) = parts(&token)?;
        claims["sub"] = json!(
            r#"{"id_company_user":null,"id_agent":null,"customer_reference":"DE--22","id_customer":22}"#
        );
        let signature = token.rsplit('.').next().ok_or("signature")?;
        let tampered = format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        assert!(tokens.verify(&tampered, NOW).is_err());
        assert!(tokens.verify("", NOW).is_err());
        assert!(tokens.verify("a.b.c", NOW).is_err());
        assert!(tokens.verify(&"a".repeat(MAX_TOKEN_LEN + 1), NOW).is_err());
        Ok(())
    }

    #[test]
    fn after_rotation_tokens_of_the_old_key_still_verify() -> TestResult {
        let old = es256_pem();
        let new = rs256_pkcs8_pem();
        let before = service(&[&old]);
        let after = service(&[&new, &old]);
        let identity = customer(Some(company_user_id()));

        let old_token = before.issue(&identity, NOW)?;
        assert_eq!(after.verify(&old_token, NOW)?, identity);

        let new_token = after.issue(&identity, NOW)?;
        let (header, _) = parts(&new_token)?;
        assert_eq!(header["kid"], json!(after.keys().signing_key().kid()));
        assert_eq!(header["alg"], "RS256");
        assert_eq!(after.verify(&new_token, NOW)?, identity);
        assert!(before.verify(&new_token, NOW).is_err());
        Ok(())
    }

    #[test]
    fn tokens_verify_with_the_published_jwks_alone() -> TestResult {
        // What a resource server does: no shared secret, only the JWKS document.
        let tokens = service(&[&es256_pem()]);
        let token = tokens.issue(&customer(None), NOW)?;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(tokens.keys().jwks())?;
        let header = jsonwebtoken::decode_header(&token)?;
        let jwk = jwks.find(header.kid.as_deref().ok_or("kid")?).ok_or("published")?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.set_audience(&["frontend"]);
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk)?,
            &validation,
        )?;
        assert_eq!(data.claims["aud"], "frontend");
        Ok(())
    }

    #[test]
    #[ignore = "a measurement, not a check: cargo test --release -- --ignored --nocapture"]
    fn cost_per_operation() -> TestResult {
        use std::time::Instant;
        for pem in [es256_pem(), rs256_pkcs8_pem(), ed25519_pem()] {
            let tokens = service(&[&pem]);
            let key = tokens.keys().signing_key();
            let identity = company_user(company_user_id());
            let rounds = 500;

            let start = Instant::now();
            let mut token = String::new();
            for _ in 0..rounds {
                token = tokens.issue(&identity, NOW)?;
            }
            let issue = start.elapsed() / rounds;

            let start = Instant::now();
            for _ in 0..rounds {
                tokens.verify(&token, NOW)?;
            }
            let verify = start.elapsed() / rounds;

            // jsonwebtoken's own encode, which parses the private key on every call.
            let der = pem_der(&pem);
            let encoding_key = match key.algorithm() {
                Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_der(&der),
                Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_der(&pkcs8_inner_key(&der)),
                _ => jsonwebtoken::EncodingKey::from_ed_der(&der),
            };
            let header = jsonwebtoken::Header::new(key.algorithm());
            let start = Instant::now();
            for _ in 0..rounds {
                jsonwebtoken::encode(&header, &valid_claims(), &encoding_key)?;
            }
            let encode = start.elapsed() / rounds;
            println!(
                "{:?}: issue {issue:?}, verify {verify:?}, jsonwebtoken::encode {encode:?}",
                key.algorithm()
            );
        }
        Ok(())
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).expect("base64")
    }
}
