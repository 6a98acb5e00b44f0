//! Which bucket ids and object names are accepted.

use super::error::{StorageError, StorageResult};

/// Longest object name, in bytes (S3's key limit).
const MAX_NAME: usize = 1024;

/// Check an object name: relative, no `.`/`..` or empty segments, no control characters.
pub fn object_name(name: &str) -> StorageResult<&str> {
    let bad = |why: &str| StorageError::invalid(format!("Invalid key: {name}: {why}"));
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(bad("the name is longer than 1024 bytes"));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(bad("the name starts or ends with a slash"));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad("the name holds control characters or backslashes"));
    }
    if name
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad("the name has empty, `.` or `..` segments"));
    }
    Ok(name)
}

/// Check a bucket id (Supabase's rule: 1–100 of letters, digits and `_!.*'() &$@=;:+,?-`).
pub fn bucket_id(id: &str) -> StorageResult<&str> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id.trim() == id
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || "_!.*'() &$@=;:+,?-".contains(c));
    if !ok {
        return Err(StorageError::invalid(format!("Invalid bucket name: {id}")));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_or_hide() {
        for good in [
            "a.txt",
            "folder/sub/file name (1).png",
            "ünï/çødé",
            ".hidden/x",
        ] {
            assert!(object_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "..",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\u{0}b",
        ] {
            assert!(object_name(bad).is_err(), "{bad:?}");
        }
        assert!(object_name(&"x".repeat(1025)).is_err());
        assert!(bucket_id("avatars").is_ok());
        assert!(bucket_id("a/b").is_err());
        assert!(bucket_id(" a").is_err());
    }
}
