//! `/storage/v1`: Supabase Storage's API. Bucket and object rows in SQLite, bytes in an OpenDAL
//! operator.
//!
//! A request's path: [`router`] → a handler in `buckets`, `objects`, `signed`, `transform` or
//! `tus` → policies in `access` → rows in `model` on the writer or a reader → bytes in `store`.

pub mod access;
pub mod buckets;
pub mod config;
pub mod download;
pub mod error;
pub mod list;
pub mod manage;
pub mod model;
pub mod names;
pub mod objects;
pub mod signed;
pub mod store;
pub mod transform;
pub mod tus;
pub mod upload;

use crate::app::AppState;
use access::Access;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use config::StorageConfig;
use error::{StorageError, StorageResult};

/// The storage service's operator and settings.
pub struct StorageService {
    pub op: opendal::Operator,
    pub config: StorageConfig,
    /// Where resumable uploads collect their bytes until complete.
    pub uploads_dir: std::path::PathBuf,
    /// Resumable uploads a PATCH is writing to right now (one at a time each).
    pub patching: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl StorageService {
    /// Build the service from its configuration.
    pub fn new(
        config: StorageConfig,
        data_dir: &std::path::Path,
    ) -> Result<StorageService, String> {
        let op = config.operator()?;
        let uploads_dir = data_dir.join("uploads");
        std::fs::create_dir_all(&uploads_dir)
            .map_err(|e| format!("cannot create {}: {e}", uploads_dir.display()))?;
        Ok(StorageService {
            op,
            config,
            uploads_dir,
            patching: Default::default(),
        })
    }
}

/// Every route of `/storage/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bucket", get(buckets::list).post(buckets::create))
        .route(
            "/bucket/{id}",
            get(buckets::get)
                .put(buckets::update)
                .delete(buckets::remove),
        )
        .route("/bucket/{id}/empty", post(buckets::empty))
        .route("/object/list/{bucket}", post(list::list))
        .route("/object/list-v2/{bucket}", post(list::list_v2))
        .route("/object/move", post(manage::move_object))
        .route("/object/copy", post(manage::copy_object))
        .route("/object/info/{bucket}/{*path}", get(download::info))
        .route(
            "/object/info/authenticated/{bucket}/{*path}",
            get(download::info),
        )
        .route(
            "/object/info/public/{bucket}/{*path}",
            get(download::info_public),
        )
        .route(
            "/object/public/{bucket}/{*path}",
            get(download::download_public),
        )
        .route(
            "/object/authenticated/{bucket}/{*path}",
            get(download::download),
        )
        .route(
            "/object/sign/{bucket}/{*path}",
            get(signed::download).post(signed::sign),
        )
        .route("/object/sign/{bucket}", post(signed::sign_many))
        .route(
            "/object/upload/sign/{bucket}/{*path}",
            post(signed::sign_upload).put(signed::upload),
        )
        .route(
            "/object/{bucket}/{*path}",
            get(download::download)
                .post(upload::upload_post)
                .put(upload::upload_put)
                .delete(manage::remove_one),
        )
        .route("/object/{bucket}", axum::routing::delete(manage::remove))
        .route(
            "/render/image/authenticated/{bucket}/{*path}",
            get(transform::render),
        )
        .route(
            "/render/image/public/{bucket}/{*path}",
            get(transform::render_public),
        )
        .route(
            "/render/image/sign/{bucket}/{*path}",
            get(transform::render_signed),
        )
        .route("/upload/resumable", post(tus::create).options(tus::options))
        .route(
            "/upload/resumable/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch)
                .delete(tus::cancel)
                .options(tus::options),
        )
        // Uploads are streamed and limited by bucket and by OUTPOST_STORAGE_MAX_FILE_SIZE.
        .layer(DefaultBodyLimit::disable())
}

/// The caller's access, from its `apikey` / bearer token.
pub fn caller(state: &AppState, headers: &HeaderMap) -> StorageResult<Access> {
    use crate::http::auth::AuthFailure;
    let caller = crate::http::auth::caller(headers, &state.verifier).map_err(|e| {
        let msg = match e {
            AuthFailure::Missing => {
                "headers must have required property 'authorization'".to_string()
            }
            AuthFailure::Expired => "jwt expired".to_string(),
            AuthFailure::Invalid(why) => format!("invalid signature: {why}"),
        };
        StorageError::new(axum::http::StatusCode::FORBIDDEN, "InvalidJWT", msg)
    })?;
    Ok(Access::of(&caller))
}
