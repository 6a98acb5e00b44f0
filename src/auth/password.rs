//! Password hashing (argon2id), verification of imported bcrypt hashes, and strength rules.

use super::config::{AuthConfig, CharClass};
use super::error::{AuthError, AuthResult};
use argon2::password_hash::{
    self, rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::http::StatusCode;
use std::cell::RefCell;

/// argon2id with OWASP's low-memory setting (7 MiB, 5 passes): the same strength as the
/// 19 MiB/2-pass default for a third of the memory, which matters on small machines.
const MEMORY_KIB: u32 = 7 * 1024;
const PASSES: u32 = 5;

thread_local! {
    /// The argon2 working memory of this (hashing) thread, kept between hashes: allocating and
    /// freeing megabytes per sign-in left every allocator arena at its high-water mark.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Largest working memory kept between hashes (imported hashes may ask for more; that is
/// allocated for the one check and freed).
const KEEP_BLOCKS: usize = 2 * MEMORY_KIB as usize;

/// Run `argon` into `out`, in this thread's kept memory when it is small enough.
fn compute(argon: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let count = argon.params().block_count();
    if count > KEEP_BLOCKS {
        let mut blocks = vec![Block::default(); count];
        return argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..]);
    }
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..count])
    })
}

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash(password: &str) -> AuthResult<String> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).map_err(AuthError::internal)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(AuthError::internal)?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        compute(&argon, password.as_bytes(), salt_raw, out)
            .map_err(|_| password_hash::Error::Crypto)
    })
    .map_err(AuthError::internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(AuthError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Wrong,
    Right,
    /// Right, but the stored hash is not argon2id with Outpost's parameters: store a fresh one.
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
    match verify_argon2(password, stored) {
        Some(true) => {
            let current = PasswordHash::new(stored).is_ok_and(|h| {
                h.algorithm == Algorithm::Argon2id.ident()
                    && Params::try_from(&h)
                        .is_ok_and(|p| p.m_cost() == MEMORY_KIB && p.t_cost() == PASSES)
            });
            if current {
                Check::Right
            } else {
                Check::RightRehash
            }
        }
        _ => Check::Wrong,
    }
}

fn verify_argon2(password: &str, stored: &str) -> Option<bool> {
    let phc = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(phc.algorithm).ok()?;
    let version = match phc.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&phc).ok()?;
    let expected = phc.hash?;
    let mut salt_bytes = [0u8; 64];
    let salt = phc.salt?.decode_b64(&mut salt_bytes).ok()?;
    let argon = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        compute(&argon, password.as_bytes(), salt, out).map_err(|_| password_hash::Error::Crypto)
    })
    .ok()?;
    // `Output`'s equality is constant-time.
    Some(computed == expected)
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
    fn phc_strings_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash("pw-123456").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pw-123456", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"pw-123456", &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify("pw-123456", &theirs), Check::RightRehash);
        assert_eq!(verify("pw-1234567", &theirs), Check::Wrong);
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
