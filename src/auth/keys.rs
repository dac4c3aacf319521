//! Signing keys for access tokens (docs/wire-contract.md §2.4). Keys come from PEM files so
//! operators can rotate them (the first key signs, every key verifies, so tokens signed by the
//! previous key stay valid until they expire); without any, the service makes its own ES256 key on
//! first start and keeps it in the data directory, so restarts do not log everyone out.
//! Every key is parsed once, here: the PEM, the crypto library's key pair, the verifying
//! key and the public JWK (whose RFC 7638 thumbprint is the `kid`). Requests only sign
//! and look keys up.

use std::{
    fs::{DirBuilder, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use aws_lc_rs::{
    digest,
    error::{KeyRejected, Unspecified},
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
        RSA_PKCS1_SHA256, RsaKeyPair,
    },
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
        EllipticCurveKeyType, Jwk, JwkSet, OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
        RSAKeyParameters, RSAKeyType,
    },
};

/// The key file created in the data directory when no key is configured.
pub const DEFAULT_KEY_FILE: &str = "signing-key.pem";

/// Why the signing keys could not be loaded. The messages name the file and, where there
/// is one, the command that fixes it: they are read by whoever runs the service.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "the signing key file {} is accessible to group or others (mode {mode:04o}); \
         a private key must be readable by the service's user only: chmod 600 {}",
        path.display(),
        path.display()
    )]
    Insecure { path: PathBuf, mode: u32 },

    #[error(
        "{} holds no PEM private key (expected a \"-----BEGIN PRIVATE KEY-----\" block)",
        path.display()
    )]
    NotPem { path: PathBuf },

    #[error(
        "{} holds a PEM \"{label}\" block, not a private key: configure the private key \
         file (the public key is derived from it)",
        path.display()
    )]
    NotPrivate { path: PathBuf, label: String },

    #[error(
        "the private key in {} is encrypted; the service needs it unencrypted (protected by \
         mode 0600 instead): openssl pkey -in {} -out NEW_FILE.pem",
        path.display(),
        path.display()
    )]
    Encrypted { path: PathBuf },

    #[error(
        "the private key in {} cannot be used: {detail}; supported are EC P-256 (ES256), \
         RSA of 2048 bits or more (RS256) and Ed25519 (EdDSA) keys in PEM",
        path.display()
    )]
    Unsupported { path: PathBuf, detail: String },

    #[error("cannot create the signing key file {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },

    #[error("cannot generate a signing key: the crypto library failed")]
    Generate,

    #[error(
        "the same signing key is configured twice: {} and {}",
        first.display(),
        second.display()
    )]
    Duplicate { first: PathBuf, second: PathBuf },

    #[error("no signing key configured")]
    Empty,
}

/// The crypto library's parsed private key, kept so that signing never re-parses PEM or
/// DER (jsonwebtoken's `EncodingKey` would, on every call).
enum KeyPair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// One key: signs if it is the first of its [`KeySet`], verifies in any case.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    key_pair: KeyPair,
    decoding_key: DecodingKey,
    jwk: Jwk,
    source: PathBuf,
    /// A secret derived from the private key, for keyed hashes that must not reveal what
    /// they hash (see [`SigningKey::derived_secret`]).
    derived: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    // The key pair stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM private key file, refusing one that group or others may read.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let read_error = |source| KeyError::Read { path: path.to_owned(), source };
        let mut file = File::open(path).map_err(read_error)?;
        // fstat on the open file, so the mode checked is the mode of what is read.
        let mode = file.metadata().map_err(read_error)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Insecure { path: path.to_owned(), mode: mode & 0o7777 });
        }
        let mut pem = Vec::new();
        file.read_to_end(&mut pem).map_err(read_error)?;
        Self::from_pem(&pem, path)
    }

    /// Parses a PEM private key; `source` only names it in errors and logs. Accepts PKCS#8
    /// (`PRIVATE KEY`: EC P-256, RSA, Ed25519), PKCS#1 (`RSA PRIVATE KEY`) and SEC 1
    /// (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes).
    pub fn from_pem(pem: &[u8], source: &Path) -> Result<Self, KeyError> {
        let block = private_key_block(pem, source)?;
        let unsupported =
            |detail: String| KeyError::Unsupported { path: source.to_owned(), detail };
        let key_pair = match block.label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&block.der)
                .map(KeyPair::Rs256)
                .map_err(|e| unsupported(rsa_rejection(e)))?,
            "EC PRIVATE KEY" => {
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &block.der)
                    .map(KeyPair::Es256)
                    .map_err(|e| unsupported(ec_rejection(e)))?
            }
            "PRIVATE KEY" => match pkcs8_key_type(&block.der) {
                Some(Pkcs8Type::Ec) => {
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &block.der)
                        .map(KeyPair::Es256)
                        .map_err(|e| unsupported(ec_rejection(e)))?
                }
                Some(Pkcs8Type::Rsa) => RsaKeyPair::from_pkcs8(&block.der)
                    .map(KeyPair::Rs256)
                    .map_err(|e| unsupported(rsa_rejection(e)))?,
                Some(Pkcs8Type::Ed25519) => Ed25519KeyPair::from_pkcs8(&block.der)
                    .map(KeyPair::EdDsa)
                    .map_err(|e| unsupported(format!("an invalid Ed25519 key ({e})")))?,
                None => return Err(unsupported("an unknown key type".to_owned())),
            },
            other => {
                return Err(unsupported(format!("an unknown PEM block \"{other}\"")));
            }
        };
        let mut key = Self::from_key_pair(key_pair, source);
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(b"glue-auth derived secret\0");
        context.update(&block.der);
        key.derived.copy_from_slice(context.finish().as_ref());
        Ok(key)
    }

    fn from_key_pair(key_pair: KeyPair, source: &Path) -> Self {
        let (algorithm, public, decoding_key) = match &key_pair {
            KeyPair::Es256(pair) => {
                // 0x04 || x || y: the uncompressed point is what jsonwebtoken verifies with.
                let point = pair.public_key().as_ref();
                let coordinates = &point[1..];
                let (x, y) = coordinates.split_at(coordinates.len() / 2);
                let public =
                    PublicParams::Ec { x: URL_SAFE_NO_PAD.encode(x), y: URL_SAFE_NO_PAD.encode(y) };
                (Algorithm::ES256, public, DecodingKey::from_ec_der(point))
            }
            KeyPair::Rs256(pair) => {
                let n = pair.public_key().modulus();
                let e = pair.public_key().exponent();
                let (n, e) =
                    (n.big_endian_without_leading_zero(), e.big_endian_without_leading_zero());
                let public = PublicParams::Rsa {
                    n: URL_SAFE_NO_PAD.encode(n),
                    e: URL_SAFE_NO_PAD.encode(e),
                };
                (Algorithm::RS256, public, DecodingKey::from_rsa_raw_components(n, e))
            }
            KeyPair::EdDsa(pair) => {
                let x = pair.public_key().as_ref();
                let public = PublicParams::Ed25519 { x: URL_SAFE_NO_PAD.encode(x) };
                (Algorithm::EdDSA, public, DecodingKey::from_ed_der(x))
            }
        };
        let kid = public.thumbprint();
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(algorithm.into()),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: public.into_jwk_params(),
        };
        let source = source.to_owned();
        Self { kid, algorithm, key_pair, decoding_key, jwk, source, derived: [0; 32] }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url without padding).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// ES256, RS256 or EdDSA, as decided by the key itself.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding_key
    }

    /// The public JWK, with `kid`, `alg` and `use: "sig"`.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A 256-bit secret derived from the private key (SHA-256 of a fixed context and the
    /// key's DER): instances that share their signing key share it too, and nobody without
    /// the key can compute it.
    pub fn derived_secret(&self) -> &[u8; 32] {
        &self.derived
    }

    /// The file the key came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The JWS signature of `message` with this key's algorithm (for ES256 the fixed-size
    /// `r || s` form JWS requires, not DER).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Unspecified> {
        match &self.key_pair {
            KeyPair::Es256(pair) => Ok(pair.sign(&SystemRandom::new(), message)?.as_ref().to_vec()),
            KeyPair::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)?;
                Ok(signature)
            }
            KeyPair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The signing keys: never empty, the first one signs, all verify.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    jwks: serde_json::Value,
}

impl KeySet {
    /// Loads `files` in order, or, with none, the ES256 key in `data_dir` (created on
    /// first start, with mode 0600).
    pub fn load(files: &[PathBuf], data_dir: &Path) -> Result<Self, KeyError> {
        let keys = if files.is_empty() {
            vec![load_or_create_default(data_dir)?]
        } else {
            files.iter().map(|path| SigningKey::from_file(path)).collect::<Result<Vec<_>, _>>()?
        };
        let set = Self::new(keys)?;
        for (index, key) in set.keys.iter().enumerate() {
            tracing::info!(
                kid = key.kid(),
                alg = ?key.algorithm(),
                file = %key.source().display(),
                signs = index == 0,
                "signing key loaded"
            );
        }
        Ok(set)
    }

    /// A set of already parsed keys; the first signs.
    pub fn new(keys: Vec<SigningKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        for (index, key) in keys.iter().enumerate() {
            if let Some(first) = keys[..index].iter().find(|k| k.kid == key.kid) {
                return Err(KeyError::Duplicate {
                    first: first.source.clone(),
                    second: key.source.clone(),
                });
            }
        }
        let set = JwkSet { keys: keys.iter().map(|key| key.jwk.clone()).collect() };
        // Serializing plain strings and enums cannot fail; `Null` would only hide a bug.
        let jwks = serde_json::to_value(set).unwrap_or(serde_json::Value::Null);
        Ok(Self { keys, jwks })
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> &SigningKey {
        // `new` refuses an empty set.
        &self.keys[0]
    }

    /// The key a token's `kid` names, if it is one of ours.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        // A handful of keys at most: a scan beats hashing.
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// All keys, the signing key first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The JWK Set document (RFC 7517) of `GET /.well-known/jwks.json`: public parts only.
    pub fn jwks(&self) -> serde_json::Value {
        self.jwks.clone()
    }
}

fn load_or_create_default(data_dir: &Path) -> Result<SigningKey, KeyError> {
    let path = data_dir.join(DEFAULT_KEY_FILE);
    match SigningKey::from_file(&path) {
        Err(KeyError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        loaded => return loaded,
    }
    let create_error = |source| KeyError::Create { path: path.clone(), source };
    // 0700 applies only to directories created here; an existing one is left as it is.
    DirBuilder::new().recursive(true).mode(0o700).create(data_dir).map_err(create_error)?;
    let pem = generate_es256_pem()?;
    match write_new_private_file(&path, pem.as_bytes()) {
        Ok(()) => tracing::info!(file = %path.display(), "created a new ES256 signing key"),
        // Another instance starting on the same data directory won the race: use its key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(create_error(e)),
    }
    // Read back what is on disk, so this start and the next one use the same bytes.
    SigningKey::from_file(&path)
}

/// A new EC P-256 key as a PKCS#8 PEM.
pub(crate) fn generate_es256_pem() -> Result<String, KeyError> {
    let pair =
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generate)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
    Ok(pem_encode("PRIVATE KEY", pkcs8.as_ref()))
}

/// Creates `path` with mode 0600 from the first byte on (never world-readable, not even
/// briefly), failing if it exists.
fn write_new_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A truncated key would stop every later start; without it the next one retries.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    // Persist the directory entry too, so a crash cannot lose a key tokens were signed with.
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// The first `... PRIVATE KEY` block of a PEM file. Files may hold other blocks too
/// (`openssl ecparam -genkey` writes `EC PARAMETERS` first).
fn private_key_block(pem: &[u8], path: &Path) -> Result<PemBlock, KeyError> {
    let not_pem = || KeyError::NotPem { path: path.to_owned() };
    let text = std::str::from_utf8(pem).map_err(|_| not_pem())?;
    let mut first_label = None;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) =
            line.strip_prefix("-----BEGIN ").and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut has_headers = false;
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) only appear in encrypted keys.
            has_headers |= line.contains(':');
            body.push_str(line);
        }
        if !closed {
            return Err(not_pem());
        }
        if label == "ENCRYPTED PRIVATE KEY" || (label.ends_with("PRIVATE KEY") && has_headers) {
            return Err(KeyError::Encrypted { path: path.to_owned() });
        }
        if label.ends_with("PRIVATE KEY") {
            let der = STANDARD.decode(body).map_err(|_| not_pem())?;
            return Ok(PemBlock { label: label.to_owned(), der });
        }
        first_label.get_or_insert_with(|| label.to_owned());
    }
    match first_label {
        Some(label) => Err(KeyError::NotPrivate { path: path.to_owned(), label }),
        None => Err(not_pem()),
    }
}

enum Pkcs8Type {
    Ec,
    Rsa,
    Ed25519,
}

/// The key type named by a PKCS#8 document's algorithm identifier, so that a rejected key
/// gets the reason from the right parser rather than "none of them worked".
fn pkcs8_key_type(der: &[u8]) -> Option<Pkcs8Type> {
    // DER-encoded OIDs (tag, length, value) of id-ecPublicKey, rsaEncryption, id-Ed25519.
    const EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const RSA: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
    // The identifier follows the outer header and the version: well within 32 bytes, and
    // looking no further keeps key material from matching by chance.
    let head = der.get(..der.len().min(32)).unwrap_or_default();
    let has = |oid: &[u8]| head.windows(oid.len()).any(|w| w == oid);
    if has(EC) {
        Some(Pkcs8Type::Ec)
    } else if has(RSA) {
        Some(Pkcs8Type::Rsa)
    } else if has(ED25519) {
        Some(Pkcs8Type::Ed25519)
    } else {
        None
    }
}

fn ec_rejection(e: KeyRejected) -> String {
    match e.description_() {
        "WrongAlgorithm" => "an EC key on a curve other than P-256".to_owned(),
        reason => format!("an invalid EC key ({reason})"),
    }
}

fn rsa_rejection(e: KeyRejected) -> String {
    match e.description_() {
        "TooSmall" => "an RSA key shorter than 2048 bits".to_owned(),
        "TooLarge" => "an RSA key longer than 8192 bits".to_owned(),
        reason => format!("an invalid RSA key ({reason})"),
    }
}

/// The public members of a JWK, base64url-encoded.
enum PublicParams {
    Ec { x: String, y: String },
    Rsa { n: String, e: String },
    Ed25519 { x: String },
}

impl PublicParams {
    /// RFC 7638: SHA-256 over the required members only, in lexicographic order, without
    /// whitespace. Base64url values need no JSON escaping, so formatting is exact.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::Ec { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            Self::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    fn into_jwk_params(self) -> AlgorithmParameters {
        match self {
            Self::Ec { x, y } => AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x,
                y,
            }),
            Self::Rsa { n, e } => {
                AlgorithmParameters::RSA(RSAKeyParameters { key_type: RSAKeyType::RSA, n, e })
            }
            Self::Ed25519 { x } => AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;

    use aws_lc_rs::{
        encoding::{AsDer, EcPrivateKeyRfc5915Der, Pkcs8V1Der},
        rsa::KeySize,
        signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair},
    };
    use serde_json::json;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    pub(crate) fn es256_pem() -> String {
        generate_es256_pem().expect("P-256 key generation")
    }

    pub(crate) fn rs256_pkcs8_pem() -> String {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der: Pkcs8V1Der<'_> = pair.as_der().expect("RSA PKCS#8");
        pem_encode("PRIVATE KEY", der.as_ref())
    }

    pub(crate) fn ed25519_pem() -> String {
        let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
        pem_encode("PRIVATE KEY", pair.to_pkcs8v1().expect("Ed25519 PKCS#8").as_ref())
    }

    pub(crate) fn key(pem: &str) -> SigningKey {
        SigningKey::from_pem(pem.as_bytes(), Path::new("test.pem")).expect("test key")
    }

    /// The contents of the PKCS#8 `privateKey` OCTET STRING: for RSA, the PKCS#1 key.
    pub(crate) fn pkcs8_inner_key(der: &[u8]) -> Vec<u8> {
        fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
            let tag = input[0];
            let (len, header) = match input[1] {
                n if n < 0x80 => (usize::from(n), 2),
                n => {
                    let count = usize::from(n & 0x7f);
                    let len =
                        input[2..2 + count].iter().fold(0, |acc, b| acc << 8 | usize::from(*b));
                    (len, 2 + count)
                }
            };
            (tag, &input[header..header + len], &input[header + len..])
        }
        let (_, outer, _) = tlv(der);
        let (_, _, rest) = tlv(outer); // version
        let (_, _, rest) = tlv(rest); // algorithm identifier
        let (tag, key, _) = tlv(rest);
        assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
        key.to_vec()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_key_is_generated_private_and_reused_on_the_next_start() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("not/yet/there");

        let first = KeySet::load(&[], &data_dir)?;
        let path = data_dir.join(DEFAULT_KEY_FILE);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(first.signing_key().algorithm(), Algorithm::ES256);
        let pem = fs::read_to_string(&path)?;
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));

        let second = KeySet::load(&[], &data_dir)?;
        assert_eq!(second.signing_key().kid(), first.signing_key().kid());
        assert_eq!(fs::read_to_string(&path)?, pem, "the key file is not rewritten");
        Ok(())
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_fix() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("key.pem");
        fs::write(&path, es256_pem())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;

        let error = KeySet::load(std::slice::from_ref(&path), tmp.path())
            .expect_err("a world-readable key is refused");
        assert!(matches!(error, KeyError::Insecure { mode: 0o644, .. }));
        let message = error.to_string();
        assert!(message.contains(&format!("chmod 600 {}", path.display())), "{message}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640))?;
        assert!(matches!(
            KeySet::load(std::slice::from_ref(&path), tmp.path()),
            Err(KeyError::Insecure { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_generated_key_that_became_readable_is_refused_too() -> TestResult {
        let tmp = tempfile::tempdir()?;
        KeySet::load(&[], tmp.path())?;
        let path = tmp.path().join(DEFAULT_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604))?;
        assert!(matches!(KeySet::load(&[], tmp.path()), Err(KeyError::Insecure { .. })));
        Ok(())
    }

    #[test]
    fn configured_files_are_loaded_in_order_and_no_default_is_created() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let new = tmp.path().join("new.pem");
        let old = tmp.path().join("old.pem");
        for path in [&new, &old] {
            write_new_private_file(path, es256_pem().as_bytes())?;
        }
        let set = KeySet::load(&[new.clone(), old.clone()], tmp.path())?;
        assert_eq!(set.keys().len(), 2);
        assert_eq!(set.signing_key().source(), new);
        let old_kid = set.keys()[1].kid().to_owned();
        assert_eq!(set.get(&old_kid).map(SigningKey::source), Some(old.as_path()));
        assert!(set.get("no-such-kid").is_none());
        assert!(!tmp.path().join(DEFAULT_KEY_FILE).exists());
        Ok(())
    }

    #[test]
    fn the_same_key_configured_twice_is_refused() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let a = tmp.path().join("a.pem");
        let b = tmp.path().join("b.pem");
        let pem = es256_pem();
        write_new_private_file(&a, pem.as_bytes())?;
        write_new_private_file(&b, pem.as_bytes())?;
        assert!(matches!(KeySet::load(&[a, b], tmp.path()), Err(KeyError::Duplicate { .. })));
        Ok(())
    }

    #[test]
    fn a_missing_configured_file_names_the_file() {
        let error = KeySet::load(&[PathBuf::from("/nonexistent/key.pem")], Path::new("/tmp"))
            .expect_err("missing file");
        assert!(matches!(error, KeyError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/key.pem"));
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // The example of RFC 7638 §3.1.
        let params = PublicParams::Rsa {
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1\
                L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4\
                QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO\
                pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF\
                Cur-kEgU8awapJzKnqDKgw"
                .to_owned(),
            e: "AQAB".to_owned(),
        };
        assert_eq!(params.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn the_kid_matches_jsonwebtokens_own_thumbprint_for_every_key_type() {
        for pem in [es256_pem(), rs256_pkcs8_pem(), ed25519_pem()] {
            let key = key(&pem);
            let mut jwk = key.jwk().clone();
            jwk.common = CommonParameters::default();
            let theirs =
                jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).expect("thumbprint");
            assert_eq!(key.kid(), theirs, "{:?}", key.algorithm());
        }
    }

    #[test]
    fn jwks_publishes_an_es256_key_with_its_public_members_only() -> TestResult {
        let key = key(&es256_pem());
        let kid = key.kid().to_owned();
        let jwks = KeySet::new(vec![key])?.jwks();
        let keys = jwks["keys"].as_array().ok_or("keys is an array")?;
        assert_eq!(keys.len(), 1);
        let jwk = keys[0].as_object().ok_or("a JWK is an object")?;
        let mut members: Vec<_> = jwk.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], json!(kid));
        for coordinate in ["x", "y"] {
            let bytes = URL_SAFE_NO_PAD.decode(jwk[coordinate].as_str().ok_or("a string")?)?;
            assert_eq!(bytes.len(), 32, "{coordinate}");
        }
        Ok(())
    }

    #[test]
    fn jwks_publishes_rsa_and_ed25519_keys() -> TestResult {
        let jwks = KeySet::new(vec![key(&rs256_pkcs8_pem()), key(&ed25519_pem())])?.jwks();

        let rsa = jwks["keys"][0].as_object().ok_or("an object")?;
        let mut members: Vec<_> = rsa.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(rsa["kty"], "RSA");
        assert_eq!(rsa["alg"], "RS256");
        assert_eq!(rsa["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().ok_or("a string")?)?;
        assert_eq!(n.len(), 256, "a 2048-bit modulus, no leading zero");

        let ed = jwks["keys"][1].as_object().ok_or("an object")?;
        let mut members: Vec<_> = ed.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(ed["kty"], "OKP");
        assert_eq!(ed["crv"], "Ed25519");
        assert_eq!(ed["alg"], "EdDSA");
        assert_eq!(ed["use"], "sig");
        Ok(())
    }

    #[test]
    fn the_algorithm_is_detected_from_the_key() -> TestResult {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA generation")?;
        let pkcs8: Pkcs8V1Der<'_> = rsa.as_der().map_err(|_| "RSA PKCS#8")?;
        let pkcs1 = pem_encode("RSA PRIVATE KEY", &pkcs8_inner_key(pkcs8.as_ref()));
        let pkcs8 = pem_encode("PRIVATE KEY", pkcs8.as_ref());
        assert_eq!(key(&pkcs8).algorithm(), Algorithm::RS256);
        assert_eq!(key(&pkcs1).algorithm(), Algorithm::RS256);
        assert_eq!(key(&pkcs1).kid(), key(&pkcs8).kid());

        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "EC generation")?;
        let sec1: EcPrivateKeyRfc5915Der<'_> = ec.private_key().as_der().map_err(|_| "SEC 1")?;
        // What `openssl ecparam -genkey` writes: parameters first, then the key.
        let sec1 = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            pem_encode("EC PRIVATE KEY", sec1.as_ref())
        );
        let pkcs8 = pem_encode("PRIVATE KEY", ec.to_pkcs8v1().map_err(|_| "PKCS#8")?.as_ref());
        assert_eq!(key(&sec1).algorithm(), Algorithm::ES256);
        assert_eq!(key(&sec1).kid(), key(&pkcs8).kid());

        let ed = Ed25519KeyPair::generate().map_err(|_| "Ed25519 generation")?;
        for document in [ed.to_pkcs8v1(), ed.to_pkcs8()] {
            let pem = pem_encode("PRIVATE KEY", document.map_err(|_| "PKCS#8")?.as_ref());
            assert_eq!(key(&pem).algorithm(), Algorithm::EdDSA);
        }
        Ok(())
    }

    #[test]
    fn unusable_pem_files_are_refused_with_a_reason() -> TestResult {
        let path = Path::new("k.pem");
        let parse = |pem: &str| SigningKey::from_pem(pem.as_bytes(), path).map(|_| ());

        assert!(matches!(parse("hello"), Err(KeyError::NotPem { .. })));
        assert!(matches!(
            parse("-----BEGIN PRIVATE KEY-----\nAAAA\n"),
            Err(KeyError::NotPem { .. })
        ));

        let public = key(&es256_pem());
        let KeyPair::Es256(pair) = &public.key_pair else {
            return Err("an ES256 key".into());
        };
        let spki = pem_encode("PUBLIC KEY", pair.public_key().as_der()?.as_ref());
        assert!(matches!(
            parse(&spki),
            Err(KeyError::NotPrivate { label, .. }) if label == "PUBLIC KEY"
        ));

        assert!(matches!(
            parse(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            Err(KeyError::Encrypted { .. })
        ));
        assert!(matches!(
            parse(
                "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"
            ),
            Err(KeyError::Encrypted { .. })
        ));

        let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .map_err(|_| "P-384 generation")?;
        let p384 = pem_encode("PRIVATE KEY", p384.to_pkcs8v1().map_err(|_| "PKCS#8")?.as_ref());
        let error = parse(&p384).expect_err("P-384 is not ES256");
        assert!(error.to_string().contains("other than P-256"), "{error}");
        Ok(())
    }

    #[test]
    fn signatures_verify_with_the_published_key() -> TestResult {
        for pem in [es256_pem(), rs256_pkcs8_pem(), ed25519_pem()] {
            let key = key(&pem);
            let signature = key.sign(b"header.payload").map_err(|_| "signing")?;
            let signature = URL_SAFE_NO_PAD.encode(signature);
            let from_jwk = DecodingKey::from_jwk(key.jwk())?;
            for decoding_key in [key.decoding_key(), &from_jwk] {
                assert!(jsonwebtoken::crypto::verify(
                    &signature,
                    b"header.payload",
                    decoding_key,
                    key.algorithm()
                )?);
            }
        }
        Ok(())
    }
}
