//! Auth settings, read from `OUTPOST_*` environment variables when the server starts.

use std::collections::HashMap;
use std::path::PathBuf;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// Where and how mail is sent.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub tls: SmtpTls,
    pub from_email: String,
    pub from_name: String,
}

/// Which kind of OAuth provider a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenID Connect provider found through its discovery document.
    Oidc { discovery_url: String },
    /// GitHub's OAuth apps (not OpenID Connect).
    GitHub { web_url: String, api_url: String },
}

/// One enabled OAuth provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: String,
}

/// Requests allowed per window, per client IP and per email address.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub window_secs: u64,
    pub sign_in: u32,
    pub sign_up: u32,
    pub otp: u32,
    pub verify: u32,
    pub refresh: u32,
}

/// Everything the auth service is configured with.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub public_url: String,
    pub site_url: String,
    pub redirect_urls: Vec<String>,
    pub jwt_expiry: i64,
    pub refresh_reuse_interval: i64,
    pub disable_signup: bool,
    pub anonymous_users: bool,
    pub password_min_length: usize,
    pub password_required: Vec<CharClass>,
    pub mailer_autoconfirm: bool,
    pub secure_email_change: bool,
    pub otp_expiry: i64,
    pub templates_dir: Option<PathBuf>,
    pub smtp: Option<SmtpConfig>,
    pub providers: HashMap<String, ProviderConfig>,
    pub mfa_max_factors: usize,
    pub rate_limits: RateLimits,
    pub trust_proxy: bool,
}

/// A class of characters a password may be required to contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    Lower,
    Upper,
    Digit,
    Symbol,
}

impl CharClass {
    /// Whether `c` belongs to the class.
    pub fn contains(self, c: char) -> bool {
        match self {
            CharClass::Lower => c.is_lowercase(),
            CharClass::Upper => c.is_uppercase(),
            CharClass::Digit => c.is_ascii_digit(),
            CharClass::Symbol => !c.is_alphanumeric() && !c.is_whitespace(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {why}")]
pub struct ConfigError {
    pub var: String,
    pub why: String,
}

fn bad(var: &str, why: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_string(),
        why: why.into(),
    }
}

impl AuthConfig {
    /// Read the settings from the process environment; `listen` is the bound address.
    pub fn from_env(listen: &str) -> Result<AuthConfig, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("OUTPOST_"))
            .collect();
        Self::from_vars(&vars, listen)
    }

    /// Read the settings from `vars` (the environment, or a test's map).
    pub fn from_vars(
        vars: &HashMap<String, String>,
        listen: &str,
    ) -> Result<AuthConfig, ConfigError> {
        let env = Env(vars);
        let smtp = match env.text("OUTPOST_SMTP_HOST") {
            None => None,
            Some(host) => {
                let port: u16 = env.parse("OUTPOST_SMTP_PORT", 587)?;
                let tls = match env.text("OUTPOST_SMTP_TLS").as_deref() {
                    None if port == 465 => SmtpTls::Tls,
                    None | Some("starttls") => SmtpTls::StartTls,
                    Some("tls") => SmtpTls::Tls,
                    Some("none") => SmtpTls::None,
                    Some(other) => {
                        return Err(bad(
                            "OUTPOST_SMTP_TLS",
                            format!("`{other}` is not one of starttls, tls, none"),
                        ))
                    }
                };
                Some(SmtpConfig {
                    host,
                    port,
                    user: env.text("OUTPOST_SMTP_USER"),
                    pass: env.text("OUTPOST_SMTP_PASS"),
                    tls,
                    from_email: String::new(),
                    from_name: env
                        .text("OUTPOST_SMTP_SENDER_NAME")
                        .unwrap_or_else(|| "Outpost".into()),
                })
            }
        };
        let site_url = env
            .text("OUTPOST_SITE_URL")
            .unwrap_or_else(|| "http://localhost:3000".into())
            .trim_end_matches('/')
            .to_string();
        let public_url = env
            .text("OUTPOST_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        let smtp = smtp.map(|mut s| {
            s.from_email = env
                .text("OUTPOST_SMTP_ADMIN_EMAIL")
                .unwrap_or_else(|| format!("noreply@{}", host_of(&site_url)));
            s
        });
        let password_required = env
            .list("OUTPOST_AUTH_PASSWORD_REQUIRED_CHARACTERS")
            .into_iter()
            .map(|c| match c.as_str() {
                "lower" => Ok(CharClass::Lower),
                "upper" => Ok(CharClass::Upper),
                "digit" | "digits" => Ok(CharClass::Digit),
                "symbol" | "symbols" => Ok(CharClass::Symbol),
                other => Err(bad(
                    "OUTPOST_AUTH_PASSWORD_REQUIRED_CHARACTERS",
                    format!("`{other}` is not one of lower, upper, digit, symbol"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut providers = HashMap::new();
        for name in env.list("OUTPOST_AUTH_PROVIDERS") {
            let name = name.to_ascii_lowercase();
            let p = provider(&env, &name)?;
            providers.insert(name, p);
        }
        let has_smtp = smtp.is_some();
        Ok(AuthConfig {
            public_url,
            site_url,
            redirect_urls: env.list("OUTPOST_AUTH_REDIRECT_URLS"),
            jwt_expiry: env.parse("OUTPOST_AUTH_JWT_EXPIRY", 3600)?,
            refresh_reuse_interval: env.parse("OUTPOST_AUTH_REFRESH_REUSE_INTERVAL", 10)?,
            disable_signup: env.flag("OUTPOST_AUTH_DISABLE_SIGNUP", false)?,
            anonymous_users: env.flag("OUTPOST_AUTH_ANONYMOUS_USERS", false)?,
            password_min_length: env.parse("OUTPOST_AUTH_PASSWORD_MIN_LENGTH", 6)?,
            password_required,
            mailer_autoconfirm: env.flag("OUTPOST_AUTH_MAILER_AUTOCONFIRM", !has_smtp)?,
            secure_email_change: env.flag("OUTPOST_AUTH_SECURE_EMAIL_CHANGE", true)?,
            otp_expiry: env.parse("OUTPOST_AUTH_OTP_EXPIRY", 3600)?,
            templates_dir: env.text("OUTPOST_AUTH_TEMPLATES_DIR").map(PathBuf::from),
            smtp,
            providers,
            mfa_max_factors: env.parse("OUTPOST_AUTH_MFA_MAX_FACTORS", 10)?,
            rate_limits: RateLimits {
                window_secs: env.parse("OUTPOST_AUTH_RATE_LIMIT_WINDOW", 300)?,
                sign_in: env.parse("OUTPOST_AUTH_RATE_LIMIT_SIGNIN", 30)?,
                sign_up: env.parse("OUTPOST_AUTH_RATE_LIMIT_SIGNUP", 30)?,
                otp: env.parse("OUTPOST_AUTH_RATE_LIMIT_OTP", 30)?,
                verify: env.parse("OUTPOST_AUTH_RATE_LIMIT_VERIFY", 30)?,
                refresh: env.parse("OUTPOST_AUTH_RATE_LIMIT_REFRESH", 150)?,
            },
            trust_proxy: env.flag("OUTPOST_TRUST_PROXY", false)?,
        })
    }
}

fn provider(env: &Env, name: &str) -> Result<ProviderConfig, ConfigError> {
    let var = |suffix: &str| format!("OUTPOST_AUTH_{}_{suffix}", name.to_ascii_uppercase());
    let required = |suffix: &str| {
        let v = var(suffix);
        env.text(&v)
            .ok_or_else(|| bad(&v, format!("required for the OAuth provider `{name}`")))
    };
    let client_id = required("CLIENT_ID")?;
    let client_secret = required("CLIENT_SECRET")?;
    let (kind, default_scopes) = match name {
        "github" => (
            ProviderKind::GitHub {
                web_url: env
                    .text("OUTPOST_AUTH_GITHUB_URL")
                    .unwrap_or_else(|| "https://github.com".into())
                    .trim_end_matches('/')
                    .to_string(),
                api_url: env
                    .text("OUTPOST_AUTH_GITHUB_API_URL")
                    .unwrap_or_else(|| "https://api.github.com".into())
                    .trim_end_matches('/')
                    .to_string(),
            },
            "read:user user:email",
        ),
        "google" => (
            ProviderKind::Oidc {
                discovery_url: env.text(&var("DISCOVERY_URL")).unwrap_or_else(|| {
                    "https://accounts.google.com/.well-known/openid-configuration".into()
                }),
            },
            "openid email profile",
        ),
        _ => (
            ProviderKind::Oidc {
                discovery_url: required("DISCOVERY_URL")?,
            },
            "openid email profile",
        ),
    };
    Ok(ProviderConfig {
        name: name.to_string(),
        kind,
        client_id,
        client_secret,
        scopes: env
            .text(&var("SCOPES"))
            .unwrap_or_else(|| default_scopes.into()),
    })
}

/// The host part of a URL (`http://a.b:3000/x` → `a.b`).
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn text(&self, var: &str) -> Option<String> {
        self.0
            .get(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn list(&self, var: &str) -> Vec<String> {
        self.text(var)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn parse<T: std::str::FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        match self.text(var) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad(var, format!("`{v}` is not a valid number"))),
        }
    }

    fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(bad(var, format!("`{v}` is not true or false"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn autoconfirm_follows_smtp() {
        let c = AuthConfig::from_vars(&vars(&[]), "127.0.0.1:8000").unwrap();
        assert!(c.mailer_autoconfirm);
        assert_eq!(c.public_url, "http://127.0.0.1:8000");
        let c = AuthConfig::from_vars(&vars(&[("OUTPOST_SMTP_HOST", "mail")]), "x").unwrap();
        assert!(!c.mailer_autoconfirm);
        let smtp = c.smtp.unwrap();
        assert_eq!(smtp.tls, SmtpTls::StartTls);
        assert_eq!(smtp.from_email, "noreply@localhost");
    }

    #[test]
    fn presets_and_generic_providers() {
        let c = AuthConfig::from_vars(
            &vars(&[
                ("OUTPOST_AUTH_PROVIDERS", "github, Google,idp"),
                ("OUTPOST_AUTH_GITHUB_CLIENT_ID", "g"),
                ("OUTPOST_AUTH_GITHUB_CLIENT_SECRET", "s"),
                ("OUTPOST_AUTH_GOOGLE_CLIENT_ID", "g"),
                ("OUTPOST_AUTH_GOOGLE_CLIENT_SECRET", "s"),
                ("OUTPOST_AUTH_IDP_CLIENT_ID", "i"),
                ("OUTPOST_AUTH_IDP_CLIENT_SECRET", "s"),
                (
                    "OUTPOST_AUTH_IDP_DISCOVERY_URL",
                    "http://idp/.well-known/openid-configuration",
                ),
            ]),
            "x",
        )
        .unwrap();
        assert!(matches!(
            c.providers["github"].kind,
            ProviderKind::GitHub { ref api_url, .. } if api_url == "https://api.github.com"
        ));
        assert!(matches!(
            c.providers["google"].kind,
            ProviderKind::Oidc { ref discovery_url } if discovery_url.starts_with("https://accounts.google.com/")
        ));
        assert_eq!(c.providers["idp"].scopes, "openid email profile");
    }

    #[test]
    fn missing_provider_settings_are_named() {
        let err = AuthConfig::from_vars(
            &vars(&[
                ("OUTPOST_AUTH_PROVIDERS", "idp"),
                ("OUTPOST_AUTH_IDP_CLIENT_ID", "i"),
                ("OUTPOST_AUTH_IDP_CLIENT_SECRET", "s"),
            ]),
            "x",
        )
        .unwrap_err();
        assert_eq!(err.var, "OUTPOST_AUTH_IDP_DISCOVERY_URL");
        let err =
            AuthConfig::from_vars(&vars(&[("OUTPOST_AUTH_JWT_EXPIRY", "soon")]), "x").unwrap_err();
        assert_eq!(err.var, "OUTPOST_AUTH_JWT_EXPIRY");
    }
}
