//! Storage settings, read from `OUTPOST_STORAGE_*` (and `AWS_*`) environment variables.

use std::collections::HashMap;
use std::path::Path;

/// Where object bytes are kept.
#[derive(Debug, Clone)]
pub enum Backend {
    Fs {
        root: String,
    },
    S3 {
        bucket: String,
        endpoint: Option<String>,
        region: String,
        root: String,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
    },
    /// Any other OpenDAL service compiled into this build, configured by its own option names
    /// (`OUTPOST_STORAGE_OPT_<NAME>=value` → `name=value`).
    Other {
        scheme: String,
        options: HashMap<String, String>,
    },
}

/// The storage service's configuration.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub backend: Backend,
    pub max_file_size: u64,
    pub signed_url_max_age: i64,
}

impl StorageConfig {
    /// Read the settings; `data_dir` holds the default filesystem root.
    pub fn from_env(data_dir: &Path) -> Result<StorageConfig, String> {
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("OUTPOST_STORAGE_") || k.starts_with("AWS_"))
            .collect();
        Self::from_vars(&vars, data_dir)
    }

    /// Read the settings from `vars`.
    pub fn from_vars(
        vars: &HashMap<String, String>,
        data_dir: &Path,
    ) -> Result<StorageConfig, String> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |k: &str, default: i64| -> Result<i64, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| format!("{k}: `{v}` is not a number")),
            }
        };
        let backend = match get("OUTPOST_STORAGE_BACKEND").as_deref() {
            None | Some("fs") => Backend::Fs {
                root: get("OUTPOST_STORAGE_FS_ROOT")
                    .unwrap_or_else(|| data_dir.join("storage").display().to_string()),
            },
            Some("s3") => Backend::S3 {
                bucket: get("OUTPOST_STORAGE_S3_BUCKET").ok_or(
                    "OUTPOST_STORAGE_S3_BUCKET is required with OUTPOST_STORAGE_BACKEND=s3",
                )?,
                endpoint: get("OUTPOST_STORAGE_S3_ENDPOINT"),
                region: get("OUTPOST_STORAGE_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                root: get("OUTPOST_STORAGE_S3_ROOT").unwrap_or_else(|| "/".into()),
                access_key_id: get("AWS_ACCESS_KEY_ID"),
                secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            },
            Some(other) => Backend::Other {
                scheme: other.to_string(),
                options: vars
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("OUTPOST_STORAGE_OPT_")
                            .map(|name| (name.to_ascii_lowercase(), v.clone()))
                    })
                    .collect(),
            },
        };
        Ok(StorageConfig {
            backend,
            max_file_size: number("OUTPOST_STORAGE_MAX_FILE_SIZE", 50 * 1024 * 1024)?.max(0) as u64,
            signed_url_max_age: number("OUTPOST_STORAGE_SIGNED_URL_MAX_AGE", 7 * 24 * 3600)?,
        })
    }

    /// The OpenDAL operator for the configured backend.
    pub fn operator(&self) -> Result<opendal::Operator, String> {
        let op = match &self.backend {
            Backend::Fs { root } => {
                std::fs::create_dir_all(root).map_err(|e| format!("cannot create {root}: {e}"))?;
                opendal::Operator::new(opendal::services::Fs::default().root(root))
                    .map_err(|e| e.to_string())?
                    .finish()
            }
            Backend::S3 {
                bucket,
                endpoint,
                region,
                root,
                access_key_id,
                secret_access_key,
            } => {
                let mut s3 = opendal::services::S3::default()
                    .bucket(bucket)
                    .region(region)
                    .root(root);
                if let Some(e) = endpoint {
                    s3 = s3.endpoint(e);
                }
                if let (Some(id), Some(secret)) = (access_key_id, secret_access_key) {
                    s3 = s3.access_key_id(id).secret_access_key(secret);
                }
                opendal::Operator::new(s3)
                    .map_err(|e| e.to_string())?
                    .finish()
            }
            Backend::Other { scheme, options } => {
                let parsed: opendal::Scheme = scheme
                    .parse()
                    .map_err(|e| format!("OUTPOST_STORAGE_BACKEND `{scheme}`: {e}"))?;
                opendal::Operator::via_iter(parsed, options.clone()).map_err(|e| {
                    format!(
                        "OUTPOST_STORAGE_BACKEND `{scheme}`: {e} (this build has fs and s3; \
                         others need their cargo feature, e.g. storage-azblob, storage-gcs)"
                    )
                })?
            }
        };
        Ok(op)
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
    fn backends_from_the_environment() {
        let dir = Path::new("/data");
        let c = StorageConfig::from_vars(&vars(&[]), dir).unwrap();
        assert!(matches!(c.backend, Backend::Fs { ref root } if root == "/data/storage"));
        assert_eq!(c.max_file_size, 50 * 1024 * 1024);
        let err =
            StorageConfig::from_vars(&vars(&[("OUTPOST_STORAGE_BACKEND", "s3")]), dir).unwrap_err();
        assert!(err.contains("OUTPOST_STORAGE_S3_BUCKET"), "{err}");
        let c = StorageConfig::from_vars(
            &vars(&[
                ("OUTPOST_STORAGE_BACKEND", "s3"),
                ("OUTPOST_STORAGE_S3_BUCKET", "b"),
                ("OUTPOST_STORAGE_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("AWS_ACCESS_KEY_ID", "id"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
            ]),
            dir,
        )
        .unwrap();
        assert!(matches!(c.backend, Backend::S3 { ref region, .. } if region == "us-east-1"));
        let c = StorageConfig::from_vars(
            &vars(&[
                ("OUTPOST_STORAGE_BACKEND", "azblob"),
                ("OUTPOST_STORAGE_OPT_CONTAINER", "c"),
            ]),
            dir,
        )
        .unwrap();
        assert!(
            matches!(c.backend, Backend::Other { ref options, .. } if options["container"] == "c")
        );
        assert!(c.operator().is_err(), "azblob is not in the default build");
    }
}
