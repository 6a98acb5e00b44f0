//! `/render/image/…`: resized and re-encoded images (PNG, JPEG, WebP) with the `image` crate.

use super::error::{StorageError, StorageResult};
use super::model::Object;
use super::{caller, objects, signed};
use crate::app::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};
use std::collections::HashMap;
use std::io::Cursor;

/// Largest source image transformed, bytes (decoding needs it whole in memory).
const MAX_SOURCE: u64 = 25 * 1024 * 1024;
/// Largest output side, pixels.
const MAX_SIDE: u32 = 2500;

/// How an image is to be resized and encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub resize: Resize,
    pub quality: u8,
    /// `None`: the source's own format.
    pub format: Option<ImageFormat>,
}

/// Supabase's resize modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Fill the box, cropping what overflows (the default).
    Cover,
    /// Fit inside the box, keeping the aspect ratio.
    Contain,
    /// Stretch to the box.
    Fill,
}

impl Options {
    /// Read `width`, `height`, `resize`, `quality` and `format` from a query.
    pub fn from_query(q: &HashMap<String, String>) -> StorageResult<Options> {
        let side = |k: &str| -> StorageResult<Option<u32>> {
            match q.get(k).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SIDE).contains(n))
                    .map(Some)
                    .ok_or_else(|| {
                        StorageError::invalid(format!("{k} must be between 1 and {MAX_SIDE}"))
                    }),
            }
        };
        let resize = match q.get("resize").map(String::as_str) {
            None | Some("") | Some("cover") => Resize::Cover,
            Some("contain") => Resize::Contain,
            Some("fill") => Resize::Fill,
            Some(other) => {
                return Err(StorageError::invalid(format!(
                    "resize `{other}` is not cover, contain or fill"
                )))
            }
        };
        let quality = match q.get("quality").filter(|v| !v.is_empty()) {
            None => 80,
            Some(v) => v
                .parse::<u8>()
                .ok()
                .filter(|n| (20..=100).contains(n))
                .ok_or_else(|| StorageError::invalid("quality must be between 20 and 100"))?,
        };
        let format = match q.get("format").map(|f| f.to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("origin") => None,
            Some("png") => Some(ImageFormat::Png),
            Some("jpeg") | Some("jpg") => Some(ImageFormat::Jpeg),
            Some("webp") => Some(ImageFormat::WebP),
            Some(other) => {
                return Err(StorageError::invalid(format!(
                    "format `{other}` is not origin, png, jpeg or webp"
                )))
            }
        };
        Ok(Options {
            width: side("width")?,
            height: side("height")?,
            resize,
            quality,
            format,
        })
    }
}

fn unsupported() -> StorageError {
    StorageError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "InvalidImage",
        "The object is not an image Outpost can transform (PNG, JPEG or WebP)",
    )
}

/// Decode, resize and encode; returns the bytes and their MIME type.
pub fn apply(source: &[u8], opts: &Options) -> StorageResult<(Vec<u8>, &'static str)> {
    let format = image::guess_format(source).map_err(|_| unsupported())?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(unsupported());
    }
    let img = image::load_from_memory_with_format(source, format).map_err(|_| unsupported())?;
    let img = resize(img, opts);
    let out_format = opts.format.unwrap_or(format);
    let mut out = Cursor::new(Vec::new());
    let mime = match out_format {
        ImageFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, opts.quality);
            img.to_rgb8()
                .write_with_encoder(enc)
                .map_err(StorageError::internal)?;
            "image/jpeg"
        }
        ImageFormat::WebP => {
            // The image crate encodes WebP losslessly only; `quality` does not apply.
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            img.to_rgba8()
                .write_with_encoder(enc)
                .map_err(StorageError::internal)?;
            "image/webp"
        }
        _ => {
            img.write_to(&mut out, ImageFormat::Png)
                .map_err(StorageError::internal)?;
            "image/png"
        }
    };
    Ok((out.into_inner(), mime))
}

fn resize(img: DynamicImage, opts: &Options) -> DynamicImage {
    let (w0, h0) = (img.width().max(1), img.height().max(1));
    let (w, h) = match (opts.width, opts.height) {
        (None, None) => return img,
        (Some(w), None) => (w, ((h0 as u64 * w as u64) / w0 as u64).max(1) as u32),
        (None, Some(h)) => (((w0 as u64 * h as u64) / h0 as u64).max(1) as u32, h),
        (Some(w), Some(h)) => (w, h),
    };
    match opts.resize {
        Resize::Cover => img.resize_to_fill(w, h, FilterType::Lanczos3),
        Resize::Contain => img.resize(w, h, FilterType::Lanczos3),
        Resize::Fill => img.resize_exact(w, h, FilterType::Lanczos3),
    }
}

async fn render_object(state: &AppState, object: Object, opts: Options) -> StorageResult<Response> {
    if object.size() > MAX_SOURCE {
        return Err(StorageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            "The image is too large to transform (25 MiB at most)",
        ));
    }
    let source = state
        .storage
        .op
        .read(&super::store::key(&object.version))
        .await?
        .to_vec();
    let (bytes, mime) = tokio::task::spawn_blocking(move || apply(&source, &opts))
        .await
        .map_err(StorageError::internal)??;
    let cache = object.metadata["cacheControl"]
        .as_str()
        .unwrap_or("no-cache")
        .to_string();
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /render/image/authenticated/{bucket}/{path}`.
pub async fn render(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> StorageResult<Response> {
    let who = caller(&state, &headers)?;
    let opts = Options::from_query(&q)?;
    let object = objects::find_visible(&state, &who, &bucket, &path).await?;
    render_object(&state, object, opts).await
}

/// `GET /render/image/public/{bucket}/{path}`.
pub async fn render_public(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> StorageResult<Response> {
    let opts = Options::from_query(&q)?;
    let object = objects::find_public(&state, &bucket, &path).await?;
    render_object(&state, object, opts).await
}

/// `GET /render/image/sign/{bucket}/{path}?token=…`: the transformation signed into the token.
pub async fn render_signed(
    State(state): State<AppState>,
    Path((bucket, path)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> StorageResult<Response> {
    let claims = signed::verify(
        &state,
        q.get("token").map(String::as_str),
        &bucket,
        &path,
        "storage-download",
    )?;
    let mut params: HashMap<String, String> = HashMap::new();
    if let Some(serde_json::Value::Object(t)) = claims.get("transformations") {
        for (k, v) in t {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            params.insert(k.clone(), text);
        }
    }
    let opts = Options::from_query(&params)?;
    let object = objects::find_any(&state, &bucket, &path).await?;
    render_object(&state, object, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::new_rgba8(w, h);
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resizes_in_each_mode_and_format() {
        let src = png(40, 20);
        let cover = apply(
            &src,
            &Options::from_query(&q(&[("width", "10"), ("height", "10")])).unwrap(),
        )
        .unwrap();
        let img = image::load_from_memory(&cover.0).unwrap();
        assert_eq!((img.width(), img.height(), cover.1), (10, 10, "image/png"));
        let contain = apply(
            &src,
            &Options::from_query(&q(&[
                ("width", "10"),
                ("height", "10"),
                ("resize", "contain"),
            ]))
            .unwrap(),
        )
        .unwrap();
        let img = image::load_from_memory(&contain.0).unwrap();
        assert_eq!((img.width(), img.height()), (10, 5));
        let jpeg = apply(
            &src,
            &Options::from_query(&q(&[("width", "8"), ("format", "jpeg"), ("quality", "50")]))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(jpeg.1, "image/jpeg");
        assert_eq!(image::load_from_memory(&jpeg.0).unwrap().height(), 4);
        let webp = apply(
            &src,
            &Options::from_query(&q(&[("height", "5"), ("format", "webp")])).unwrap(),
        )
        .unwrap();
        assert_eq!(webp.1, "image/webp");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let err = apply(
            b"plain text",
            &Options::from_query(&q(&[("width", "10")])).unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(Options::from_query(&q(&[("width", "0")])).is_err());
        assert!(Options::from_query(&q(&[("resize", "stretch")])).is_err());
        assert!(Options::from_query(&q(&[("quality", "5")])).is_err());
    }
}
