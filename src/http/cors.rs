//! CORS for browser clients: the headers supabase-js sends and the ones it reads.

use axum::http::{HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

const ALLOW_HEADERS: &[&str] = &[
    "apikey",
    "authorization",
    "x-client-info",
    "content-type",
    "accept",
    "accept-profile",
    "content-profile",
    "prefer",
    "range",
    "range-unit",
    "x-upsert",
    "cache-control",
    "x-metadata",
    "x-region",
    "x-supabase-api-version",
    "x-retry-count",
    "traceparent",
    "tracestate",
    "baggage",
    // Resumable uploads (TUS).
    "tus-resumable",
    "upload-length",
    "upload-metadata",
    "upload-offset",
    "upload-defer-length",
    "upload-concat",
    "x-http-method-override",
];

const EXPOSE_HEADERS: &[&str] = &[
    "content-range",
    "x-supabase-api-version",
    "x-relay-error",
    "x-total-count",
    "link",
    "location",
    "preference-applied",
    "content-location",
    // Downloads and resumable uploads.
    "etag",
    "last-modified",
    "content-disposition",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "upload-offset",
    "upload-length",
];

/// The CORS layer; `origins == None` allows any origin.
pub fn layer(origins: Option<&[String]>) -> CorsLayer {
    let allow_origin = match origins {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(
            ALLOW_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .expose_headers(
            EXPOSE_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .max_age(Duration::from_secs(86_400))
}
