//! Auth mail over SMTP (lettre), from built-in templates or the project's own files.

use super::config::{SmtpConfig, SmtpTls};
use super::error::{AuthError, AuthResult};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// Which mail is sent; names the template file (`<name>.html`, `<name>.subject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Confirmation,
    Recovery,
    MagicLink,
    EmailChange,
    Invite,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Confirmation => "confirmation",
            Template::Recovery => "recovery",
            Template::MagicLink => "magic_link",
            Template::EmailChange => "email_change",
            Template::Invite => "invite",
        }
    }

    fn default_subject(self) -> &'static str {
        match self {
            Template::Confirmation => "Confirm your signup",
            Template::Recovery => "Reset your password",
            Template::MagicLink => "Your sign-in link",
            Template::EmailChange => "Confirm your email change",
            Template::Invite => "You have been invited",
        }
    }

    fn default_body(self) -> &'static str {
        match self {
            Template::Confirmation => {
                "<h2>Confirm your signup</h2>\n<p>Follow this link to confirm your email address:</p>\n\
                 <p><a href=\"{{ .ConfirmationURL }}\">Confirm your email</a></p>\n\
                 <p>Or enter this code: {{ .Token }}</p>\n"
            }
            Template::Recovery => {
                "<h2>Reset your password</h2>\n<p>Follow this link to reset the password of {{ .Email }}:</p>\n\
                 <p><a href=\"{{ .ConfirmationURL }}\">Reset password</a></p>\n\
                 <p>Or enter this code: {{ .Token }}</p>\n"
            }
            Template::MagicLink => {
                "<h2>Your sign-in link</h2>\n<p>Follow this link to sign in:</p>\n\
                 <p><a href=\"{{ .ConfirmationURL }}\">Sign in</a></p>\n\
                 <p>Or enter this code: {{ .Token }}</p>\n"
            }
            Template::EmailChange => {
                "<h2>Confirm your email change</h2>\n<p>Follow this link to confirm the change from {{ .Email }} to {{ .NewEmail }}:</p>\n\
                 <p><a href=\"{{ .ConfirmationURL }}\">Change email</a></p>\n\
                 <p>Or enter this code: {{ .Token }}</p>\n"
            }
            Template::Invite => {
                "<h2>You have been invited</h2>\n<p>You have been invited to create a user on {{ .SiteURL }}. \
                 Follow this link to accept the invite:</p>\n\
                 <p><a href=\"{{ .ConfirmationURL }}\">Accept the invite</a></p>\n\
                 <p>Or enter this code: {{ .Token }}</p>\n"
            }
        }
    }
}

/// The values a template may use.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub confirmation_url: String,
    pub token: String,
    pub token_hash: String,
    pub site_url: String,
    pub email: String,
    pub new_email: String,
    pub redirect_to: String,
}

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "ConfirmationURL" => &self.confirmation_url,
            "Token" => &self.token,
            "TokenHash" => &self.token_hash,
            "SiteURL" => &self.site_url,
            "Email" => &self.email,
            "NewEmail" => &self.new_email,
            "RedirectTo" => &self.redirect_to,
            _ => return None,
        })
    }
}

/// Sends auth mail through one SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates_dir: Option<PathBuf>,
}

impl Mailer {
    /// A mailer for `smtp`, reading overrides from `templates_dir`.
    pub fn new(smtp: &SmtpConfig, templates_dir: Option<PathBuf>) -> Result<Mailer, String> {
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .map_err(|e| e.to_string())?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                .map_err(|e| e.to_string())?,
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(pass)) = (&smtp.user, &smtp.pass) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let from = format!("{} <{}>", smtp.from_name, smtp.from_email)
            .parse::<Mailbox>()
            .map_err(|e| format!("OUTPOST_SMTP_ADMIN_EMAIL: {e}"))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            templates_dir,
        })
    }

    /// Render `template` with `vars` and send it to `to`.
    pub async fn send(&self, to: &str, template: Template, vars: &Vars) -> AuthResult<()> {
        let (subject, body) = self.load(template).await;
        let html = render(&body, vars, true);
        let text = html_to_text(&render(&body, vars, false));
        let to: Mailbox = to.parse().map_err(|_| {
            AuthError::validation("Unable to validate email address: invalid format")
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(render(&subject, vars, false).trim())
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(AuthError::internal)?;
        self.transport.send(message).await.map_err(|e| {
            tracing::error!(error = %e, "cannot send auth mail");
            AuthError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "email_send_failed",
                "Error sending email",
            )
        })?;
        Ok(())
    }

    async fn load(&self, template: Template) -> (String, String) {
        let mut subject = template.default_subject().to_string();
        let mut body = template.default_body().to_string();
        if let Some(dir) = &self.templates_dir {
            if let Ok(b) =
                tokio::fs::read_to_string(dir.join(format!("{}.html", template.name()))).await
            {
                body = b;
            }
            if let Ok(s) =
                tokio::fs::read_to_string(dir.join(format!("{}.subject", template.name()))).await
            {
                subject = s;
            }
        }
        (subject, body)
    }
}

/// Replace `{{ .Name }}` placeholders; unknown names are left as they are.
fn render(template: &str, vars: &Vars, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim().trim_start_matches('.');
        match vars.get(name) {
            Some(v) if html => out.push_str(&escape_html(v)),
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A plain-text part from the HTML: tags dropped, link targets kept.
fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start + 1..start + end];
        if let Some(href) = tag
            .split("href=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
        {
            out.push_str(href);
            out.push(' ');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_with_go_template_spacing() {
        let vars = Vars {
            token: "123456".into(),
            confirmation_url: "http://x/verify?token=a&type=b".into(),
            ..Vars::default()
        };
        assert_eq!(
            render("{{ .Token }}|{{.Token}}|{{ .Unknown }}", &vars, false),
            "123456|123456|{{ .Unknown }}"
        );
        assert_eq!(
            render("<a href=\"{{ .ConfirmationURL }}\">", &vars, true),
            "<a href=\"http://x/verify?token=a&amp;type=b\">"
        );
        let text = html_to_text(&render(Template::MagicLink.default_body(), &vars, false));
        assert!(text.contains("http://x/verify?token=a&type=b"));
        assert!(text.contains("123456"));
    }
}
