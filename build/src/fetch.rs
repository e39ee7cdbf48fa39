//! ADD of `http(s)://` URLs: downloaded once per build into
//! `<root>/build/downloads/<sha256 of the URL>`, verified against
//! `--checksum=sha256:<hex>` when given (a file already there with that
//! checksum is not fetched again), named by the `Content-Disposition`
//! filename or the URL's last path segment, and given the `Last-Modified`
//! time. Git URLs (see `git`) are not downloads: callers check
//! [`crate::git::is_git_url`] first.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

/// A downloaded ADD source.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub path: PathBuf,
    /// The file name it gets under a directory destination.
    pub name: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    pub modified: Option<SystemTime>,
}

pub fn is_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && !crate::git::is_git_url(s)
}

fn url_name(url: &str) -> String {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split("://")
        .nth(1)
        .unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || !path.contains('/') {
        "__unnamed__".to_owned()
    } else {
        name.to_owned()
    }
}

fn disposition_name(header: &str) -> Option<String> {
    header.split(';').find_map(|part| {
        let part = part.trim();
        let v = part.strip_prefix("filename=")?;
        let v = v.trim_matches('"');
        let base = v.rsplit('/').next()?;
        (!base.is_empty() && base != "." && base != "..").then(|| base.to_owned())
    })
}

/// Downloads `url` (or reuses a verified copy) under `dir`.
pub fn fetch(url: &str, checksum: Option<&str>, dir: &Path) -> Result<Fetched, String> {
    let want = checksum
        .map(|c| {
            c.strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
                .map(|h| format!("sha256:{}", h.to_ascii_lowercase()))
                .ok_or_else(|| format!("--checksum {c:?}: expected sha256:<64 hex digits>"))
        })
        .transpose()?;
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key = hex::encode(Sha256::digest(url.as_bytes()));
    let path = dir.join(&key);
    let meta_path = dir.join(format!("{key}.json"));
    if let Some(want) = &want
        && let Ok(bytes) = fs::read(&path)
        && &format!("sha256:{}", hex::encode(Sha256::digest(&bytes))) == want
        && let Ok(name) = fs::read_to_string(&meta_path)
    {
        return Ok(Fetched {
            path,
            name,
            digest: want.clone(),
            modified: None,
        });
    }
    static PROVIDER: Once = Once::new();
    // ring rather than aws-lc-rs: no cmake/C toolchain for the build;
    // the post-quantum groups it lacks matter little for downloads.
    #[allow(deprecated)]
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let mut response = client
        .get(url)
        .send()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("cannot download {url}: HTTP {}", response.status()));
    }
    let name = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_name)
        .unwrap_or_else(|| url_name(url));
    let modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(httpdate);
    let tmp = dir.join(format!("{key}.part{}", std::process::id()));
    let mut out = fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = response
            .read(&mut buf)
            .map_err(|e| format!("cannot download {url}: {e}"))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        std::io::Write::write_all(&mut out, chunk)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    drop(out);
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(want) = &want
        && &digest != want
    {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "checksum of {url} does not match: expected {want}, got {digest}"
        ));
    }
    fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = fs::write(&meta_path, &name);
    Ok(Fetched {
        path,
        name,
        digest,
        modified,
    })
}

/// RFC 7231 dates (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == month)? + 1;
    let text = format!("{year}-{m:02}-{:0>2}T{time}Z", day);
    humantime::parse_rfc3339(&text).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(url_name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_name("http://h"), "__unnamed__");
        assert_eq!(
            disposition_name("attachment; filename=\"r.txt\"").as_deref(),
            Some("r.txt")
        );
        assert!(httpdate("Sun, 06 Nov 1994 08:49:37 GMT").is_some());
        assert!(!is_url("https://example.org/x.git"));
        assert!(is_url("https://example.org/x.tar"));
        assert!(
            fetch(
                "http://127.0.0.1:1/x",
                Some("md5:x"),
                Path::new("/nonexistent")
            )
            .unwrap_err()
            .contains("checksum")
        );
    }
}
