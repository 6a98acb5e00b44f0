//! Password hashing (argon2id), verification of imported bcrypt hashes, and strength rules.

use super::config::{AuthConfig, CharClass};
use super::error::{AuthError, AuthResult};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::http::StatusCode;

/// argon2id with OWASP's low-memory setting (7 MiB, 5 passes): the same strength as the
/// 19 MiB/2-pass default for a third of the memory, which matters on small machines.
fn hasher() -> Argon2<'static> {
    match argon2::Params::new(7 * 1024, 5, 1, None) {
        Ok(params) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
        Err(_) => Argon2::default(),
    }
}

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash(password: &str) -> AuthResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AuthError::internal)
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Wrong,
    Right,
    /// Right, but the stored hash is not argon2id: store a fresh one.
    RightRehash,
}

/// A hash to check against when there is no user, so that an unknown address takes as long to
/// refuse as a wrong password (no timing oracle for which emails exist).
static DUMMY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash("no such user").unwrap_or_default());

/// Check `password` against an argon2 PHC string or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`);
/// an empty `stored` (no user, or no password) is checked against a dummy and is wrong.
pub fn verify(password: &str, stored: &str) -> Check {
    if stored.is_empty() {
        if !DUMMY.is_empty() {
            let _ = verify(password, &DUMMY);
        }
        return Check::Wrong;
    }
    if stored.starts_with("$2") {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Check::RightRehash,
            _ => Check::Wrong,
        };
    }
    match PasswordHash::new(stored) {
        Ok(parsed)
            if Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok() =>
        {
            if parsed.algorithm.as_str() == "argon2id" {
                Check::Right
            } else {
                Check::RightRehash
            }
        }
        _ => Check::Wrong,
    }
}

/// Whether `stored` is a hash Outpost can check (for imports through the admin API).
pub fn is_supported_hash(stored: &str) -> bool {
    if stored.starts_with("$2") {
        return stored.parse::<bcrypt::HashParts>().is_ok();
    }
    PasswordHash::new(stored).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

/// Refuse passwords shorter than the minimum or missing a required class of characters.
pub fn check_strength(config: &AuthConfig, password: &str) -> AuthResult<()> {
    let mut reasons = Vec::new();
    let mut msgs = Vec::new();
    if password.chars().count() < config.password_min_length {
        reasons.push("length");
        msgs.push(format!(
            "Password should be at least {} characters.",
            config.password_min_length
        ));
    }
    let missing: Vec<&str> = config
        .password_required
        .iter()
        .filter(|class| !password.chars().any(|c| class.contains(c)))
        .map(|class| match class {
            CharClass::Lower => "a lowercase letter",
            CharClass::Upper => "an uppercase letter",
            CharClass::Digit => "a digit",
            CharClass::Symbol => "a symbol",
        })
        .collect();
    if !missing.is_empty() {
        reasons.push("characters");
        msgs.push(format!("Password should contain {}.", missing.join(", ")));
    }
    if reasons.is_empty() {
        return Ok(());
    }
    let mut err = AuthError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "weak_password",
        msgs.join(" "),
    );
    err.weak_reasons = reasons;
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify("correct horse", &h), Check::Right);
        assert_eq!(verify("wrong horse", &h), Check::Wrong);
        assert!(is_supported_hash(&h));
    }

    #[test]
    fn bcrypt_imports_verify_and_ask_for_rehash() {
        let h = bcrypt::hash("hunter2hunter2", 4).unwrap();
        assert_eq!(verify("hunter2hunter2", &h), Check::RightRehash);
        assert_eq!(verify("hunter3", &h), Check::Wrong);
        assert!(is_supported_hash(&h));
        assert!(!is_supported_hash("plaintext"));
        assert_eq!(verify("x", "garbage"), Check::Wrong);
    }
}
