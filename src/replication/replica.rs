//! A replica location (Litestream's URL forms) as an OpenDAL operator plus Litestream's key
//! layout, and listing its LTX files.

use super::ltx;
use opendal::Operator;

/// How levels are laid out: `ltx/<level>/` (file and most backends) or `<level as %04x>/` (S3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    LtxDecimal,
    Hex4,
}

/// A replica: where its files are and how their keys are formed.
pub struct Replica {
    pub op: Operator,
    pub layout: Layout,
    /// The folder of a `file://` replica (whose files get the header time as mtime).
    pub fs_root: Option<std::path::PathBuf>,
}

/// One LTX file of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub level: u8,
    pub min_txid: u64,
    pub max_txid: u64,
    pub key: String,
}

/// Why a replica cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("replica URL {0}")]
    Url(String),
    #[error("replica storage: {0}")]
    Store(#[from] opendal::Error),
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

impl Replica {
    /// Open `file:///path` or `s3://bucket/path?endpoint=…&region=…&forcePathStyle=true`
    /// (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
    pub fn open(url: &str) -> Result<Replica, ReplicaError> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(ReplicaError::Url(format!("{url}: no path")));
            }
            // Files are written aside and renamed in, so a crash mid-upload never leaves a
            // partial file under an LTX name.
            let op = Operator::new(
                opendal::services::Fs::default()
                    .root(path)
                    .atomic_write_dir(&format!("{}/.outpost-tmp", path.trim_end_matches('/'))),
            )?
            .finish();
            return Ok(Replica {
                op,
                layout: Layout::LtxDecimal,
                fs_root: Some(std::path::PathBuf::from(path)),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, path) = location.split_once('/').unwrap_or((location, ""));
            if bucket.is_empty() {
                return Err(ReplicaError::Url(format!("{url}: no bucket")));
            }
            let decode = |v: &str| {
                form_urlencoded::parse(format!("v={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let mut s3 = opendal::services::S3::default()
                .bucket(bucket)
                .root(&format!("/{path}"))
                .region(
                    &query_param(query, "region")
                        .map(decode)
                        .unwrap_or_else(|| "us-east-1".into()),
                );
            if let Some(e) = query_param(query, "endpoint") {
                s3 = s3.endpoint(&decode(e));
            }
            if let (Ok(id), Ok(secret)) = (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                s3 = s3.access_key_id(&id).secret_access_key(&secret);
            }
            let op = Operator::new(s3)?.finish();
            return Ok(Replica {
                op,
                layout: Layout::Hex4,
                fs_root: None,
            });
        }
        Err(ReplicaError::Url(format!(
            "{url}: use file:///path or s3://bucket/path?endpoint=…"
        )))
    }

    /// The folder of `level`.
    pub fn level_dir(&self, level: u8) -> String {
        match self.layout {
            Layout::LtxDecimal => format!("ltx/{level}/"),
            Layout::Hex4 => format!("{level:04x}/"),
        }
    }

    /// The key of `name` at `level`.
    pub fn key(&self, level: u8, name: &str) -> String {
        format!("{}{name}", self.level_dir(level))
    }

    /// Every LTX file of every level (other names are ignored, as Litestream does).
    pub async fn list(&self) -> Result<Vec<Entry>, ReplicaError> {
        self.list_levels(0..=9).await
    }

    /// The LTX files of `levels`.
    pub async fn list_levels(
        &self,
        levels: impl IntoIterator<Item = u8>,
    ) -> Result<Vec<Entry>, ReplicaError> {
        let mut out = Vec::new();
        for level in levels {
            let dir = self.level_dir(level);
            let entries = match self.op.list(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for e in entries {
                let name = e.name();
                if let Some((min, max)) = parse_name(name) {
                    out.push(Entry {
                        level,
                        min_txid: min,
                        max_txid: max,
                        key: format!("{dir}{name}"),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// `<16 hex>-<16 hex>.ltx` → (min, max).
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".ltx")?;
    let (a, b) = stem.split_once('-')?;
    if a.len() != 16
        || b.len() != 16
        || !a
            .chars()
            .chain(b.chars())
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return None;
    }
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

/// The file name of an LTX file for `min..=max` (re-exported for writers).
pub fn name(min: u64, max: u64) -> String {
    ltx::file_name(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert_eq!(
            parse_name("0000000000000001-000000000000000a.ltx"),
            Some((1, 10))
        );
        assert_eq!(parse_name("0000000000000001-000000000000000A.ltx"), None);
        assert_eq!(parse_name("1-2.ltx"), None);
        assert_eq!(parse_name("0000000000000001-0000000000000002.txt"), None);
        let r = Replica::open("file:///tmp/x").unwrap();
        assert_eq!(r.level_dir(9), "ltx/9/");
        let s = Replica::open("s3://bkt/backups/a.db?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true").unwrap();
        assert_eq!(s.level_dir(9), "0009/");
        assert!(Replica::open("ftp://x").is_err());
        assert!(Replica::open("s3://").is_err());
    }
}
