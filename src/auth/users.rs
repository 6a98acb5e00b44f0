//! App users as stored in `_outpost_auth_users`, and their JSON form (GoTrue's user object).

use super::secrets::unix_now;
use crate::db::functions::now_iso;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};

/// One row of `_outpost_auth_users`.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub aud: String,
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub encrypted_password: Option<String>,
    pub email_confirmed_at: Option<String>,
    pub phone_confirmed_at: Option<String>,
    pub invited_at: Option<String>,
    pub confirmation_sent_at: Option<String>,
    pub recovery_sent_at: Option<String>,
    pub email_change: Option<String>,
    pub email_change_sent_at: Option<String>,
    pub email_change_confirm: i64,
    pub last_sign_in_at: Option<String>,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    pub is_anonymous: bool,
    pub banned_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

const COLUMNS: &str = "id, aud, role, email, phone, encrypted_password, email_confirmed_at, \
    phone_confirmed_at, invited_at, confirmation_sent_at, recovery_sent_at, email_change, \
    email_change_sent_at, email_change_confirm, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, \
    is_anonymous, banned_until, created_at, updated_at, deleted_at";

fn object(text: String) -> Map<String, Value> {
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        aud: r.get(1)?,
        role: r.get(2)?,
        email: r.get(3)?,
        phone: r.get(4)?,
        encrypted_password: r.get(5)?,
        email_confirmed_at: r.get(6)?,
        phone_confirmed_at: r.get(7)?,
        invited_at: r.get(8)?,
        confirmation_sent_at: r.get(9)?,
        recovery_sent_at: r.get(10)?,
        email_change: r.get(11)?,
        email_change_sent_at: r.get(12)?,
        email_change_confirm: r.get(13)?,
        last_sign_in_at: r.get(14)?,
        app_metadata: object(r.get(15)?),
        user_metadata: object(r.get(16)?),
        is_anonymous: r.get(17)?,
        banned_until: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
        deleted_at: r.get(21)?,
    })
}

/// The user with `id`, unless deleted.
pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM _outpost_auth_users WHERE id = ?1 AND deleted_at IS NULL"
    ))?
    .query_row([id], from_row)
    .optional()
}

/// The user with `email` (any case), unless deleted.
pub fn by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM _outpost_auth_users WHERE email = ?1 AND deleted_at IS NULL"
    ))?
    .query_row([email.to_lowercase()], from_row)
    .optional()
}

/// One page of users, oldest first, and the total count.
pub fn page(conn: &Connection, page: i64, per_page: i64) -> rusqlite::Result<(Vec<User>, i64)> {
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM _outpost_auth_users WHERE deleted_at IS NULL",
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM _outpost_auth_users WHERE deleted_at IS NULL \
         ORDER BY created_at, id LIMIT ?1 OFFSET ?2"
    ))?;
    let users = stmt
        .query_map(params![per_page, (page - 1) * per_page], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((users, total))
}

/// What a new user starts with.
#[derive(Debug, Default)]
pub struct NewUser {
    pub id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub confirmed: bool,
    pub invited: bool,
    pub is_anonymous: bool,
    pub provider: String,
    pub role: Option<String>,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
}

/// Insert a user, and its identity for the `email` provider when it has an email.
pub fn insert(conn: &Connection, new: NewUser) -> rusqlite::Result<User> {
    let id = new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let now = now_iso();
    let email = new.email.map(|e| e.to_lowercase());
    let mut app = new.app_metadata;
    app.insert("provider".into(), json!(new.provider));
    app.insert("providers".into(), json!([new.provider]));
    conn.prepare_cached(
        "INSERT INTO _outpost_auth_users (id, role, email, phone, encrypted_password, \
         email_confirmed_at, invited_at, raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?
    .execute(params![
        id,
        new.role.unwrap_or_else(|| "authenticated".into()),
        email,
        new.phone,
        new.password_hash,
        new.confirmed.then(|| now.clone()),
        new.invited.then(|| now.clone()),
        Value::Object(app).to_string(),
        Value::Object(new.user_metadata.clone()).to_string(),
        new.is_anonymous,
        now,
    ])?;
    if let (Some(email), "email") = (&email, new.provider.as_str()) {
        insert_identity(
            conn,
            &id,
            "email",
            &id,
            Some(email),
            identity_data(&id, email, &new.user_metadata, new.confirmed),
        )?;
    }
    by_id(conn, &id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

fn identity_data(id: &str, email: &str, meta: &Map<String, Value>, verified: bool) -> Value {
    let mut data = meta.clone();
    data.insert("sub".into(), json!(id));
    data.insert("email".into(), json!(email));
    data.insert("email_verified".into(), json!(verified));
    data.insert("phone_verified".into(), json!(false));
    Value::Object(data)
}

/// Link an identity (`provider`, `provider_id`) to a user.
pub fn insert_identity(
    conn: &Connection,
    user_id: &str,
    provider: &str,
    provider_id: &str,
    email: Option<&str>,
    data: Value,
) -> rusqlite::Result<()> {
    let now = now_iso();
    conn.prepare_cached(
        "INSERT INTO _outpost_auth_identities (id, provider_id, provider, user_id, identity_data, \
         email, last_sign_in_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7) \
         ON CONFLICT (provider, provider_id) DO UPDATE SET identity_data = excluded.identity_data, \
         email = excluded.email, last_sign_in_at = excluded.last_sign_in_at, \
         updated_at = excluded.updated_at",
    )?
    .execute(params![
        uuid::Uuid::new_v4().to_string(),
        provider_id,
        provider,
        user_id,
        data.to_string(),
        email,
        now,
    ])?;
    // Keep app_metadata.providers in step with the identities.
    conn.prepare_cached(
        "UPDATE _outpost_auth_users SET raw_app_meta_data = json_set(raw_app_meta_data, '$.providers', \
         (SELECT json_group_array(provider) FROM (SELECT DISTINCT provider FROM \
         _outpost_auth_identities WHERE user_id = ?1 ORDER BY created_at))) WHERE id = ?1",
    )?
    .execute([user_id])?;
    Ok(())
}

/// The user with this identity, if any.
pub fn by_identity(
    conn: &Connection,
    provider: &str,
    provider_id: &str,
) -> rusqlite::Result<Option<User>> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT user_id FROM _outpost_auth_identities WHERE provider = ?1 AND provider_id = ?2",
        )?
        .query_row([provider, provider_id], |r| r.get(0))
        .optional()?;
    match id {
        Some(id) => by_id(conn, &id),
        None => Ok(None),
    }
}

/// Record a sign-in.
pub fn touch_sign_in(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE _outpost_auth_users SET last_sign_in_at = now(), updated_at = now() WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Set one nullable text column of a user (the column name is Outpost's, never a client's).
pub fn set(
    conn: &Connection,
    id: &str,
    column: &'static str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!("UPDATE _outpost_auth_users SET {column} = ?2, updated_at = now() WHERE id = ?1"),
        params![id, value],
    )?;
    Ok(())
}

/// Set a user's timestamp column to now.
pub fn stamp(conn: &Connection, id: &str, column: &'static str) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "UPDATE _outpost_auth_users SET {column} = now(), updated_at = now() WHERE id = ?1"
        ),
        [id],
    )?;
    Ok(())
}

/// Replace a user's metadata object (`app_metadata` or `user_metadata`).
pub fn set_metadata(
    conn: &Connection,
    id: &str,
    column: &'static str,
    value: &Map<String, Value>,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!("UPDATE _outpost_auth_users SET {column} = ?2, updated_at = now() WHERE id = ?1"),
        params![id, Value::Object(value.clone()).to_string()],
    )?;
    Ok(())
}

/// Mark the user's email confirmed, and its email identity verified.
pub fn confirm_email(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE _outpost_auth_users SET email_confirmed_at = coalesce(email_confirmed_at, now()), \
         updated_at = now() WHERE id = ?1",
    )?
    .execute([id])?;
    conn.prepare_cached(
        "UPDATE _outpost_auth_identities SET identity_data = json_set(identity_data, \
         '$.email_verified', json('true')) WHERE user_id = ?1 AND provider = 'email'",
    )?
    .execute([id])?;
    Ok(())
}

impl User {
    /// Whether the user is banned right now.
    pub fn is_banned(&self) -> bool {
        self.banned_until.as_deref().is_some_and(|until| {
            time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
                .map_or(true, |t| t.unix_timestamp() > unix_now())
        })
    }

    /// The user's `app_metadata.provider`, `email` when unset.
    pub fn provider(&self) -> String {
        self.app_metadata
            .get("provider")
            .and_then(Value::as_str)
            .unwrap_or("email")
            .to_string()
    }

    /// GoTrue's user object, with identities and factors.
    pub fn to_json(&self, conn: &Connection) -> rusqlite::Result<Value> {
        let identities = conn
            .prepare_cached(
                "SELECT id, provider_id, user_id, identity_data, provider, email, created_at, \
                 last_sign_in_at, updated_at FROM _outpost_auth_identities WHERE user_id = ?1 \
                 ORDER BY created_at",
            )?
            .query_map([&self.id], |r| {
                Ok(json!({
                    "identity_id": r.get::<_, String>(0)?,
                    "id": r.get::<_, String>(1)?,
                    "user_id": r.get::<_, String>(2)?,
                    "identity_data": serde_json::from_str::<Value>(&r.get::<_, String>(3)?)
                        .unwrap_or(Value::Null),
                    "provider": r.get::<_, String>(4)?,
                    "email": r.get::<_, Option<String>>(5)?,
                    "created_at": r.get::<_, String>(6)?,
                    "last_sign_in_at": r.get::<_, Option<String>>(7)?,
                    "updated_at": r.get::<_, String>(8)?,
                }))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let factors = super::mfa::factors_json(conn, &self.id)?;
        let mut user = json!({
            "id": self.id,
            "aud": self.aud,
            "role": self.role,
            "email": self.email.clone().unwrap_or_default(),
            "email_confirmed_at": self.email_confirmed_at,
            "phone": self.phone.clone().unwrap_or_default(),
            "phone_confirmed_at": self.phone_confirmed_at,
            "confirmed_at": self.email_confirmed_at.clone().or(self.phone_confirmed_at.clone()),
            "confirmation_sent_at": self.confirmation_sent_at,
            "recovery_sent_at": self.recovery_sent_at,
            "email_change_sent_at": self.email_change_sent_at,
            "new_email": self.email_change,
            "invited_at": self.invited_at,
            "last_sign_in_at": self.last_sign_in_at,
            "app_metadata": self.app_metadata,
            "user_metadata": self.user_metadata,
            "identities": identities,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "is_anonymous": self.is_anonymous,
            "is_sso_user": false,
        });
        if !factors.is_empty() {
            user["factors"] = Value::Array(factors);
        }
        if let Some(b) = &self.banned_until {
            user["banned_until"] = json!(b);
        }
        Ok(user)
    }
}
