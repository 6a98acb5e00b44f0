//! Where the app may be sent back to: the site URL's origin and the configured allow-list.

use super::config::AuthConfig;

/// `redirect_to` when it is allowed, else the site URL.
pub fn resolve(config: &AuthConfig, redirect_to: Option<&str>) -> String {
    match redirect_to.map(str::trim).filter(|r| !r.is_empty()) {
        Some(target) if allowed(config, target) => target.to_string(),
        _ => config.site_url.clone(),
    }
}

fn allowed(config: &AuthConfig, target: &str) -> bool {
    if target.contains(['\r', '\n', ' ']) {
        return false;
    }
    if origin(target).is_some() && origin(target) == origin(&config.site_url) {
        return true;
    }
    config
        .redirect_urls
        .iter()
        .any(|pattern| glob_matches(pattern, target))
}

/// `scheme://authority` of an absolute URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// `**` matches anything, `*` anything but `/`; everything else literally.
fn glob_matches(pattern: &str, target: &str) -> bool {
    let mut re = String::from("^");
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**") {
            re.push_str(".*");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            re.push_str("[^/]*");
            rest = r;
        } else {
            let next = rest.find('*').unwrap_or(rest.len());
            re.push_str(&regex::escape(&rest[..next]));
            rest = &rest[next..];
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(target))
}

/// Append `params` to `url` as its query (`?`) or fragment (`#`).
pub fn with_params(url: &str, params: &[(String, String)], fragment: bool) -> String {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    if fragment {
        let base = url.split('#').next().unwrap_or(url);
        format!("{base}#{encoded}")
    } else {
        let (base, frag) = match url.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (url, None),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        match frag {
            Some(f) => format!("{base}{sep}{encoded}#{f}"),
            None => format!("{base}{sep}{encoded}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(urls: &str) -> AuthConfig {
        let vars: HashMap<String, String> = [
            (
                "OUTPOST_SITE_URL".to_string(),
                "http://localhost:3000".to_string(),
            ),
            ("OUTPOST_AUTH_REDIRECT_URLS".to_string(), urls.to_string()),
        ]
        .into_iter()
        .collect();
        AuthConfig::from_vars(&vars, "127.0.0.1:1").unwrap()
    }

    #[test]
    fn site_origin_and_patterns_are_allowed() {
        let c = config("https://app.test/**,myapp://callback,https://*.preview.test/cb");
        assert_eq!(
            resolve(&c, Some("http://localhost:3000/welcome")),
            "http://localhost:3000/welcome"
        );
        assert_eq!(
            resolve(&c, Some("https://app.test/a/b?c=1")),
            "https://app.test/a/b?c=1"
        );
        assert_eq!(resolve(&c, Some("myapp://callback")), "myapp://callback");
        assert_eq!(
            resolve(&c, Some("https://pr1.preview.test/cb")),
            "https://pr1.preview.test/cb"
        );
        for bad in [
            "https://evil.test/",
            "https://app.test.evil.test/",
            "http://localhost:3000@evil.test/",
            "https://a/b.preview.test/cb",
            "http://localhost:30001/",
        ] {
            assert_eq!(resolve(&c, Some(bad)), "http://localhost:3000", "{bad}");
        }
        assert_eq!(resolve(&c, None), "http://localhost:3000");
    }

    #[test]
    fn params_go_to_query_or_fragment() {
        let p = vec![("code".to_string(), "a b".to_string())];
        assert_eq!(
            with_params("http://x/cb?y=1", &p, false),
            "http://x/cb?y=1&code=a+b"
        );
        assert_eq!(
            with_params("http://x/cb#old", &p, true),
            "http://x/cb#code=a+b"
        );
    }
}
