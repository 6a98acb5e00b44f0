//! `/rest/v1`: the PostgREST dialect over the SQLite tables.
//!
//! A request's path: [`router`] → [`handle_table`] (credentials, headers, query string) →
//! [`read`] or [`write`] (plan with [`plan::Planner`], run on the reader pool or the writer) →
//! [`response`] (representation, headers).

pub mod access;
pub mod error;
pub mod openapi;
pub mod parse;
pub mod plan;
pub mod prefer;
pub mod query;
pub mod read;
pub mod response;
pub mod rpc;
pub mod value;
pub mod write;

use crate::app::AppState;
use crate::http::auth::{self, AuthFailure};
use crate::keys::Caller;
use crate::policy::context::RequestContext;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use error::{RestError, RestResult};
use prefer::{Accept, Prefer};
use query::ApiQuery;
use std::sync::Arc;

/// Routes of the data API, mounted at `/rest/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", any(handle_root))
        .route("/rpc/{name}", any(handle_rpc))
        .route("/{table}", any(handle_table))
}

/// Everything a handler needs to know about one request.
pub struct Ctx {
    pub caller: Arc<Caller>,
    /// The caller as SQLite's `auth.*()` functions see it.
    pub request: Arc<RequestContext>,
    pub table: String,
    pub query: ApiQuery,
    pub prefer: Prefer,
    pub accept: Accept,
    pub headers: HeaderMap,
}

impl Ctx {
    /// Whether row-level security applies to this request.
    pub fn rls(&self) -> bool {
        !self.request.bypass_rls
    }
}

fn auth_error(f: AuthFailure) -> RestError {
    match f {
        AuthFailure::Missing => RestError::new(
            StatusCode::UNAUTHORIZED,
            "PGRST302",
            "No API key found in request",
        )
        .hint("No `apikey` request header or `Authorization: Bearer` token was found."),
        AuthFailure::Expired => RestError::new(StatusCode::UNAUTHORIZED, "PGRST303", "JWT expired"),
        AuthFailure::Invalid(why) => RestError::new(StatusCode::UNAUTHORIZED, "PGRST301", why),
    }
}

/// Checks shared by every endpoint: credentials, query length, schema profile.
fn preflight(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    method: &Method,
) -> RestResult<Arc<Caller>> {
    let query_len = uri.query().map_or(0, str::len);
    if query_len > state.config.max_query_bytes {
        return Err(RestError::new(
            StatusCode::URI_TOO_LONG,
            "PGRST100",
            format!(
                "The query string is {query_len} bytes long; at most {} are accepted",
                state.config.max_query_bytes
            ),
        ));
    }
    let caller = auth::caller(headers, &state.verifier).map_err(auth_error)?;
    let profile_header = if matches!(*method, Method::GET | Method::HEAD) {
        "accept-profile"
    } else {
        "content-profile"
    };
    if let Some(profile) = headers.get(profile_header) {
        if profile.to_str().map(str::trim).ok() != Some("public") {
            return Err(RestError::new(
                StatusCode::NOT_ACCEPTABLE,
                "PGRST106",
                "The schema must be one of the following: public",
            ));
        }
    }
    Ok(caller)
}

async fn handle_table(
    State(state): State<AppState>,
    Path(table): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let caller = preflight(&state, &uri, &headers, &method)?;
        let query = ApiQuery::parse(uri.query().unwrap_or_default())?;
        query.require_grammar()?;
        let ctx = Ctx {
            request: RequestContext::for_caller(&caller),
            caller,
            table,
            query,
            prefer: Prefer::from_headers(&headers)?,
            accept: Accept::from_headers(&headers)?,
            headers,
        };
        match method {
            Method::GET => read::read(&state, ctx, false).await,
            Method::HEAD => read::read(&state, ctx, true).await,
            Method::POST => {
                let body = read_body(&state, body).await?;
                write::insert(&state, ctx, body).await
            }
            Method::PATCH => {
                let body = read_body(&state, body).await?;
                write::update(&state, ctx, body).await
            }
            Method::DELETE => write::delete(&state, ctx).await,
            _ => Err(method_not_allowed(&method)),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /rest/v1/`: the OpenAPI document (mounted with and without the trailing slash).
pub async fn handle_root(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = async {
        if !matches!(method, Method::GET | Method::HEAD) {
            return Err(method_not_allowed(&method));
        }
        let caller = preflight(&state, &uri, &headers, &method)?;
        openapi::document(&state, &caller, &headers)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn handle_rpc(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        if !matches!(method, Method::GET | Method::HEAD | Method::POST) {
            return Err(method_not_allowed(&method));
        }
        let caller = preflight(&state, &uri, &headers, &method)?;
        let base = rpc::CallBase {
            request: RequestContext::for_caller(&caller),
            caller,
            prefer: Prefer::from_headers(&headers)?,
            accept: Accept::from_headers(&headers)?,
            headers,
        };
        let body = read_body(&state, body).await?;
        let query = uri.query().unwrap_or_default().to_string();
        rpc::call(&state, base, name, method, query, body).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn method_not_allowed(method: &Method) -> RestError {
    RestError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "PGRST117",
        format!("Unsupported HTTP method: {method}"),
    )
}

/// Read the whole body, refusing more than the configured limit.
async fn read_body(state: &AppState, body: Body) -> RestResult<bytes::Bytes> {
    let limit = state.config.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        RestError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PGRST102",
            format!("The request body is larger than {limit} bytes"),
        )
    })
}
