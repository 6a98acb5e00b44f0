//! The project's JWT secret, the anon and service_role keys derived from it, and JWT verification.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// File under the data dir holding the generated secret.
const SECRET_FILE: &str = "jwt_secret";
/// Keys carry a fixed `iat` so that every node sharing a secret derives byte-identical keys.
const KEYS_ISSUED_AT: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
/// Legacy Supabase keys are valid for ten years; Outpost's for twenty.
const KEYS_LIFETIME_SECS: i64 = 20 * 365 * 24 * 3600;

/// Error reading or creating the project's secret or keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the JWT secret at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the JWT secret must be at least 32 characters long")]
    TooShort,
    #[error("cannot sign a key: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Read the secret from `OUTPOST_JWT_SECRET`, else from the data dir, generating it on first run.
pub fn load_or_create_secret(data_dir: &Path) -> Result<String, KeyError> {
    if let Ok(secret) = std::env::var("OUTPOST_JWT_SECRET") {
        if !secret.is_empty() {
            return check_len(secret);
        }
    }
    let path = data_dir.join(SECRET_FILE);
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(s) => check_len(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(data_dir).map_err(io)?;
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let secret = hex::encode(bytes);
            write_private(&path, &secret).map_err(io)?;
            Ok(secret)
        }
        Err(e) => Err(io(e)),
    }
}

fn check_len(secret: String) -> Result<String, KeyError> {
    if secret.len() < 32 {
        return Err(KeyError::TooShort);
    }
    Ok(secret)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    fs::write(path, contents)
}

/// The two API keys of a project.
#[derive(Debug, Clone)]
pub struct ProjectKeys {
    pub anon_key: String,
    pub service_role_key: String,
}

impl ProjectKeys {
    /// Derive both keys from the secret.
    pub fn derive(secret: &str) -> Result<Self, KeyError> {
        Ok(ProjectKeys {
            anon_key: sign_role(secret, "anon")?,
            service_role_key: sign_role(secret, "service_role")?,
        })
    }
}

fn sign_role(secret: &str, role: &str) -> Result<String, KeyError> {
    let claims = json!({
        "iss": "outpost",
        "role": role,
        "iat": KEYS_ISSUED_AT,
        "exp": KEYS_ISSUED_AT + KEYS_LIFETIME_SECS,
    });
    sign(secret, &claims)
}

/// Sign arbitrary claims with the project secret (HS256).
pub fn sign(secret: &str, claims: &Value) -> Result<String, KeyError> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// A database role, as named by the JWT's `role` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Anon,
    Authenticated,
    ServiceRole,
    /// Any other role name a custom JWT carries; treated like `authenticated` for access.
    Other(String),
}

impl Role {
    fn from_claim(role: &str) -> Role {
        match role {
            "anon" => Role::Anon,
            "authenticated" => Role::Authenticated,
            "service_role" => Role::ServiceRole,
            other => Role::Other(other.to_string()),
        }
    }

    /// The role's name as Postgres would spell it.
    pub fn name(&self) -> &str {
        match self {
            Role::Anon => "anon",
            Role::Authenticated => "authenticated",
            Role::ServiceRole => "service_role",
            Role::Other(s) => s,
        }
    }
}

/// A verified caller: its role and every claim of its token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    pub claims: Map<String, Value>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid(String),
}
/// Most verified tokens remembered; the cache is emptied when it fills.
const VERIFIED_CACHE: usize = 4096;

/// Verifies tokens against the project secret.
///
/// Every request carries a token, most of them the same few (the API keys, a user's access token
/// for its lifetime), so a verified token is remembered by its exact text (signature included)
/// until it expires: later requests skip the HMAC and the JSON parsing.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    verified: Arc<Mutex<HashMap<String, Arc<Caller>>>>,
}

impl Verifier {
    /// A verifier for HS256 tokens signed with `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: Arc::default(),
        }
    }
    /// Verify a token and read its role (`anon` when the token names none).
    pub fn verify(&self, token: &str) -> Result<Arc<Caller>, TokenError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Ok(mut cache) = self.verified.lock() {
            if let Some(caller) = cache.get(token) {
                match caller.claims.get("exp").and_then(Value::as_i64) {
                    Some(exp) if exp <= now => {
                        cache.remove(token);
                        return Err(TokenError::Expired);
                    }
                    _ => return Ok(caller.clone()),
                }
            }
        }
        let caller = Arc::new(self.decode(token)?);
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE {
                cache.clear();
            }
            cache.insert(token.to_string(), caller.clone());
        }
        Ok(caller)
    }

    fn decode(&self, token: &str) -> Result<Caller, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidSignature => {
                TokenError::Invalid("JWSError JWSInvalidSignature".into())
            }
            _ => TokenError::Invalid(format!("JWSError {e}")),
        })?;
        let role = data
            .claims
            .get("role")
            .and_then(Value::as_str)
            .map(Role::from_claim)
            .unwrap_or(Role::Anon);
        Ok(Caller {
            role,
            claims: data.claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_verify_with_their_roles() {
        let secret = "a".repeat(40);
        let keys = ProjectKeys::derive(&secret).unwrap();
        let v = Verifier::new(&secret);
        assert_eq!(v.verify(&keys.anon_key).unwrap().role, Role::Anon);
        assert_eq!(
            v.verify(&keys.service_role_key).unwrap().role,
            Role::ServiceRole
        );
        let other = Verifier::new(&"b".repeat(40));
        assert!(matches!(
            other.verify(&keys.anon_key),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn cached_tokens_still_expire() {
        let secret = "a".repeat(40);
        let v = Verifier::new(&secret);
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 1;
        let token = sign(&secret, &json!({"role": "authenticated", "exp": soon})).unwrap();
        assert_eq!(v.verify(&token).unwrap().role, Role::Authenticated);
        assert_eq!(v.verify(&token).unwrap().role, Role::Authenticated);
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(v.verify(&token).unwrap_err(), TokenError::Expired);
        // A forged token with the same claims is never served from the cache.
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(v.verify(&forged).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let secret = "a".repeat(40);
        let token = sign(&secret, &json!({"role": "authenticated", "exp": 1000})).unwrap();
        assert_eq!(
            Verifier::new(&secret).verify(&token).unwrap_err(),
            TokenError::Expired
        );
    }
}
