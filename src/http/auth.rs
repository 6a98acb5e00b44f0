//! Who is calling: the role and claims from the `Authorization` bearer token or the `apikey`.

use crate::keys::{Caller, TokenError, Verifier};
use axum::http::HeaderMap;
use std::sync::Arc;

/// Why a request carries no usable credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Expired,
    Invalid(String),
}

/// Verify the request's credentials. A user JWT in `Authorization` decides the role; the
/// `apikey`, when sent, must be valid too (as Supabase's gateway requires).
pub fn caller(headers: &HeaderMap, verifier: &Verifier) -> Result<Arc<Caller>, AuthFailure> {
    let apikey = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let check = |t: &str| {
        verifier.verify(t).map_err(|e| match e {
            TokenError::Expired => AuthFailure::Expired,
            TokenError::Invalid(why) => AuthFailure::Invalid(why),
        })
    };
    match (bearer, apikey) {
        (Some(token), Some(key)) if token != key => {
            check(key)?;
            check(token)
        }
        (Some(token), _) => check(token),
        (None, Some(key)) => check(key),
        (None, None) => Err(AuthFailure::Missing),
    }
}
