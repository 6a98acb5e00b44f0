//! Parsing `multipart/form-data` request bodies for `Request.formData()`.

use super::runtime::{arg_str, bytes_of};
use boa_engine::object::builtins::{JsArray, JsUint8Array};
use boa_engine::object::ObjectInitializer;
use boa_engine::property::Attribute;
use boa_engine::{js_string, Context, JsError, JsResult, JsValue};

/// One part: its field name, file name and type when it is a file, and its bytes.
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

fn type_error(msg: String) -> JsError {
    boa_engine::JsNativeError::typ().with_message(msg).into()
}

async fn parts(body: Vec<u8>, boundary: String) -> Result<Vec<Part>, String> {
    let stream =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) },
        );
    let mut form = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.to_string());
        let bytes = field.bytes().await.map_err(|e| e.to_string())?.to_vec();
        out.push(Part {
            name,
            filename,
            content_type,
            bytes,
        });
    }
    Ok(out)
}

/// `__outpost.multipart(bytes, contentType)` → `[{name, filename?, type?, bytes}]`.
pub fn native_parse(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let body = bytes_of(&args.first().cloned().unwrap_or_default(), ctx)?;
    let content_type = arg_str(args, 1, ctx)?;
    let boundary =
        multer::parse_boundary(&content_type).map_err(|e| type_error(format!("formData: {e}")))?;
    let parsed = super::fetch::block_on(parts(body, boundary))
        .and_then(|r| r)
        .map_err(|e| type_error(format!("formData: {e}")))?;
    let mut list = Vec::with_capacity(parsed.len());
    for part in parsed {
        let bytes = JsUint8Array::from_iter(part.bytes, ctx)?;
        let mut obj = ObjectInitializer::new(ctx);
        obj.property(js_string!("name"), js_string!(part.name), Attribute::all())
            .property(js_string!("bytes"), bytes, Attribute::all());
        if let Some(f) = part.filename {
            obj.property(js_string!("filename"), js_string!(f), Attribute::all());
        }
        if let Some(t) = part.content_type {
            obj.property(js_string!("type"), js_string!(t), Attribute::all());
        }
        list.push(JsValue::from(obj.build()));
    }
    Ok(JsArray::from_iter(list, ctx).into())
}
