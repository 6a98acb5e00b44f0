//! Natives behind `crypto.subtle` (digest, HMAC) and the webhook-signature helper: the
//! arithmetic runs in Rust; the Web API shapes are built in the prelude.

use super::runtime::{arg_str, bytes_of};
use boa_engine::object::builtins::JsUint8Array;
use boa_engine::{Context, JsError, JsResult, JsValue};
use hmac::{Hmac, Mac};
use sha2::Digest;

fn unsupported(alg: &str) -> JsError {
    boa_engine::JsNativeError::typ()
        .with_message(format!(
            "{alg} is not supported: use SHA-1, SHA-256, SHA-384 or SHA-512"
        ))
        .into()
}

fn digest(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg.to_ascii_uppercase().as_str() {
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match <M as Mac>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac(alg: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg.to_ascii_uppercase().as_str() {
        "SHA-1" => mac::<Hmac<sha1::Sha1>>(key, data),
        "SHA-256" => mac::<Hmac<sha2::Sha256>>(key, data),
        "SHA-384" => mac::<Hmac<sha2::Sha384>>(key, data),
        "SHA-512" => mac::<Hmac<sha2::Sha512>>(key, data),
        _ => return None,
    })
}

/// `__outpost.digest(alg, bytes)` → `Uint8Array`.
pub fn native_digest(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let alg = arg_str(args, 0, ctx)?;
    let data = bytes_of(&args.get(1).cloned().unwrap_or_default(), ctx)?;
    let out = digest(&alg, &data).ok_or_else(|| unsupported(&alg))?;
    Ok(JsUint8Array::from_iter(out, ctx)?.into())
}

/// `__outpost.hmac(hash, key, bytes)` → `Uint8Array`.
pub fn native_hmac(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let alg = arg_str(args, 0, ctx)?;
    let key = bytes_of(&args.get(1).cloned().unwrap_or_default(), ctx)?;
    let data = bytes_of(&args.get(2).cloned().unwrap_or_default(), ctx)?;
    let out = hmac(&alg, &key, &data).ok_or_else(|| unsupported(&alg))?;
    Ok(JsUint8Array::from_iter(out, ctx)?.into())
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `__outpost.timingSafeEqual(a, b)` → boolean.
pub fn native_equal(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let a = bytes_of(&args.first().cloned().unwrap_or_default(), ctx)?;
    let b = bytes_of(&args.get(1).cloned().unwrap_or_default(), ctx)?;
    Ok(JsValue::from(equal(&a, &b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // RFC 4231 test case 2.
        let out = hmac("SHA-256", b"Jefe", b"what do ya want for nothing?").unwrap_or_default();
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let out = digest("sha-1", b"abc").unwrap_or_default();
        assert_eq!(hex::encode(out), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(digest("MD5", b"").is_none());
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"abc", b"ab"));
    }
}
