//! `--cache-from` / `--cache-to` (and compose's `build.cache_from` /
//! `build.cache_to`) as berth's builder takes them.
//!
//! The builder reads the inline cache of images in the store
//! (`berth_build::INLINE_CACHE_CONFIG_KEY`), so a cache source is made
//! local first ([`fetch_sources`]): `type=registry,ref=REF` is pulled
//! (the local image is used when the pull fails); a bare `REF` is the
//! local image when there is one, else pulled. A pulled source is tagged
//! in the store as `berth pull` would. A source that cannot be had is
//! warned about and the build goes on without it, as with BuildKit.
//!
//! Only the inline cache is written: `type=inline` (or the build arg
//! `BUILDKIT_INLINE_CACHE=1`). Other exporters (`registry`, `local`,
//! `gha`, ...) are refused by `berth build` and warned about by compose
//! (a compose file written for CI should still build here).

use std::sync::Arc;

use berth_image::registry::{NoProgress, PullOptions, Registry, block_on};
use berth_image::{Reference, Store};

/// One `--cache-from` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSource {
    /// `type=registry,ref=REF`: pulled.
    Registry(String),
    /// `REF`: the local image, else pulled.
    Image(String),
}

/// Parses a `--cache-from` value; the error says why it is not used.
pub fn parse_cache_from(spec: &str) -> Result<CacheSource, String> {
    if !spec.contains('=') {
        return Ok(CacheSource::Image(spec.to_owned()));
    }
    let fields = fields(spec)?;
    match field(&fields, "type").unwrap_or("registry") {
        "registry" => match field(&fields, "ref") {
            Some(r) => Ok(CacheSource::Registry(r.to_owned())),
            None => Err(format!(
                "cache source {spec:?}: type=registry needs ref=IMAGE"
            )),
        },
        other => Err(format!(
            "cache source {spec:?}: type={other} is not read by berth (only images: REF or type=registry,ref=REF)"
        )),
    }
}

/// Whether a `--cache-to` value asks for the inline cache; the error says
/// what berth can export instead.
pub fn parse_cache_to(spec: &str) -> Result<(), String> {
    let fields = fields(spec)?;
    match field(&fields, "type") {
        Some("inline") => Ok(()),
        Some(other) => Err(format!(
            "cache export {spec:?}: type={other} is not supported; berth writes the cache inline in the image (type=inline), push the image and use it with --cache-from"
        )),
        None => Err(format!(
            "cache export {spec:?}: give type=inline (the only cache export berth has)"
        )),
    }
}

fn fields(spec: &str) -> Result<Vec<(&str, &str)>, String> {
    spec.split(',')
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("{spec:?}: {kv:?} is not KEY=VALUE"))
        })
        .collect()
}

fn field<'a>(fields: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The references (in the store) of the cache sources `specs` can give,
/// pulling what must be pulled; `warn` hears about each one left out.
pub fn fetch_sources(
    store: &Store,
    registry: impl Fn() -> Option<Registry>,
    specs: &[String],
    warn: &dyn Fn(String),
) -> Vec<String> {
    let mut local = Vec::new();
    for spec in specs {
        let (reference, pull_first) = match parse_cache_from(spec) {
            Ok(CacheSource::Registry(r)) => (r, true),
            Ok(CacheSource::Image(r)) => (r, false),
            Err(message) => {
                warn(message);
                continue;
            }
        };
        let have = || store.image(&reference).is_ok();
        if !pull_first && have() {
            local.push(reference);
            continue;
        }
        let pulled = pull(store, registry(), &reference);
        match pulled {
            Ok(()) => local.push(reference),
            Err(e) if have() => {
                tracing::debug!(cache_from = %reference, error = %e,
                    "cache source not pulled; the local image is used");
                local.push(reference);
            }
            Err(e) => warn(format!(
                "cache source {reference} not found ({e}): building without it"
            )),
        }
    }
    local
}

fn pull(store: &Store, registry: Option<Registry>, reference: &str) -> Result<(), String> {
    let registry = registry.ok_or("no registry client")?;
    let parsed = Reference::parse(reference).map_err(|e| e.to_string())?;
    let outcome = block_on(registry.pull(
        store,
        &parsed,
        &PullOptions::default(),
        Arc::new(NoProgress),
    ))
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    tracing::info!(cache_from = %parsed.familiar(), digest = %outcome.digest, "cache source pulled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_from_values_as_buildx_reads_them() {
        assert_eq!(
            parse_cache_from("app:cache"),
            Ok(CacheSource::Image("app:cache".into()))
        );
        assert_eq!(
            parse_cache_from("type=registry,ref=127.0.0.1:5000/app:cache"),
            Ok(CacheSource::Registry("127.0.0.1:5000/app:cache".into()))
        );
        assert_eq!(
            parse_cache_from("ref=r/app:c"),
            Ok(CacheSource::Registry("r/app:c".into()))
        );
        let e = parse_cache_from("type=local,src=/tmp/c").unwrap_err();
        assert!(e.contains("type=local is not read"), "{e}");
        let e = parse_cache_from("type=registry").unwrap_err();
        assert!(e.contains("needs ref="), "{e}");
    }

    #[test]
    fn only_the_inline_cache_is_exported() {
        assert_eq!(parse_cache_to("type=inline"), Ok(()));
        let e = parse_cache_to("type=registry,ref=r/app:cache,mode=max").unwrap_err();
        assert!(e.contains("type=registry is not supported"), "{e}");
        assert!(parse_cache_to("dest=/tmp").is_err());
        assert!(parse_cache_to("inline").is_err());
    }

    #[test]
    fn a_missing_source_is_warned_about_and_left_out() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let warnings = std::sync::Mutex::new(Vec::new());
        let got = fetch_sources(
            &store,
            || None,
            &["nothing:here".into(), "type=gha".into()],
            &|w| warnings.lock().unwrap().push(w),
        );
        assert!(got.is_empty());
        let warnings = warnings.into_inner().unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("nothing:here not found"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("type=gha"), "{warnings:?}");
    }
}
