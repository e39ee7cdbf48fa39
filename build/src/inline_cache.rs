//! Inline cache: the cache keys of the steps that made an image, written
//! into the image's config so that another store (another host, a fresh
//! CI runner) can take those steps from the image instead of running them
//! (`--cache-from`). BuildKit's counterpart is `moby.buildkit.cache.v0`;
//! berth's is the top-level config key [`CONFIG_KEY`]:
//!
//! ```json
//! "berth.build.cache.v0": {"records": [
//!   {"key": "<hex>", "layer": 1, "created": "2024-01-01T00:00:00Z"},
//!   {"key": "<hex>", "layer": null, "created": "..."}
//! ]}
//! ```
//!
//! One record per filesystem step of the image's stage chain (COPY, ADD,
//! WORKDIR, RUN, in order): its cache key, the index of the layer it
//! added in `rootfs.diff_ids` (`null`: the step changed no file) and when
//! it first ran (the history time, so an imported step gives the same
//! image ID). Metadata steps (ENV, LABEL, ...) need no record: they never
//! run anything, and their keys are recomputed from the Dockerfile.
//!
//! Written only when asked (`--cache-to type=inline`, compose
//! `cache_to: [type=inline]`, or the build arg `BUILDKIT_INLINE_CACHE=1`),
//! as BuildKit does: the records change the config, hence the image ID.

use berth_image::{Image, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::{Entry, Key};
use crate::error::{BuildError, Result};

/// The image config's top-level key holding the records.
pub const CONFIG_KEY: &str = "berth.build.cache.v0";

/// One step that made the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The step's cache key (hex).
    pub key: String,
    /// Index in `rootfs.diff_ids` of the layer the step added.
    pub layer: Option<usize>,
    /// RFC 3339: when the step first ran.
    pub created: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Records {
    records: Vec<CacheRecord>,
}

/// The value written under [`CONFIG_KEY`].
pub fn to_value(records: &[CacheRecord]) -> Value {
    serde_json::to_value(Records {
        records: records.to_vec(),
    })
    .unwrap_or(Value::Null)
}

/// The cache entries an image carries, keyed as the builder looks them
/// up. An image without records gives none; records that name a layer the
/// image does not have are refused (the image was not made by berth, or
/// was edited).
pub fn entries(store: &Store, image: &Image, shown: &str) -> Result<Vec<(Key, Entry)>> {
    let raw = store.raw_config(image)?;
    let Some(value) = raw.get(CONFIG_KEY) else {
        return Ok(Vec::new());
    };
    let records: Records = serde_json::from_value(value.clone()).map_err(|e| {
        BuildError::Invalid(format!(
            "cache source {shown}: its config's {CONFIG_KEY} is not berth's inline cache: {e}"
        ))
    })?;
    let layers = store.image_layers(image)?;
    records
        .records
        .into_iter()
        .map(|r| {
            let layer = match r.layer {
                None => None,
                Some(i) => Some(layers.get(i).cloned().ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "cache source {shown}: a cache record names layer {i}, the image has {}",
                        layers.len()
                    ))
                })?),
            };
            Ok((Key(r.key), Entry::new(layer, None, r.created)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_through_the_config_value() {
        let records = vec![
            CacheRecord {
                key: "ab".into(),
                layer: Some(1),
                created: "2024-01-01T00:00:00Z".into(),
            },
            CacheRecord {
                key: "cd".into(),
                layer: None,
                created: "2024-01-02T00:00:00Z".into(),
            },
        ];
        let v = to_value(&records);
        assert_eq!(v["records"][0]["key"], "ab");
        assert_eq!(v["records"][1]["layer"], Value::Null);
        let back: Records = serde_json::from_value(v).unwrap();
        assert_eq!(back.records, records);
    }
}
