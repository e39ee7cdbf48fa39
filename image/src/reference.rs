//! [`Reference`]: an image name as Docker normalizes it.
//!
//! `busybox` means `docker.io/library/busybox:latest`; `localhost:5000/app:1`
//! keeps its registry; `name@sha256:...` pins a manifest. The store keeps
//! the full form (so two spellings of one name are one name), and
//! [`Reference::familiar`] gives back the short form `docker images` shows.
//! The grammar is distribution/reference's (`reference.go`, `normalize.go`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry Docker assumes when a name has none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A normalized image reference: registry domain, repository path, and a
/// tag, a digest or both.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes like `docker pull` does: the default registry
    /// and `library/` are filled in, and `:latest` when neither a tag nor a
    /// digest is given.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d).map_err(|_| bad("bad digest"))?)),
            None => (input, None),
        };
        // A tag is what follows the last ':' that has no '/' after it; a
        // ':' before a '/' is a registry port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(&bad)?;
        }
        if name.is_empty() {
            return Err(bad("missing repository name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("repository name must not be more than 255 characters"));
        }
        let (domain, path) = split_domain(name);
        if domain == DEFAULT_DOMAIN
            && !name.contains('/')
            && tag.is_none()
            && digest.is_none()
            && name.len() == 64
            && name.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad(
                "cannot specify 64-byte hexadecimal strings (they are image IDs)",
            ));
        }
        check_domain(&domain).map_err(&bad)?;
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        for component in path.split('/') {
            check_path_component(component).map_err(&bad)?;
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker shows it: without `docker.io/` and
    /// `library/`, e.g. `busybox` or `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            let path = self
                .path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path);
            path.to_owned()
        } else {
            self.name()
        }
    }

    /// The whole reference in familiar form, e.g. `busybox:latest`.
    pub fn familiar(&self) -> String {
        with_suffixes(self.familiar_name(), self)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            reference: format!("{}:{tag}", self.name()),
            reason: reason.to_owned(),
        })?;
        Ok(Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }
}

fn with_suffixes(mut out: String, r: &Reference) -> String {
    if let Some(tag) = &r.tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = &r.digest {
        out.push('@');
        out.push_str(&digest.to_string());
    }
    out
}

/// Docker's `splitDockerDomain`: the first component is a registry when it
/// looks like a host (has a '.' or ':', or is `localhost`, or has an
/// upper-case letter, which a repository path cannot).
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.to_owned()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{path}")
    } else {
        path
    };
    (domain, path)
}

/// `[\w][\w.-]{0,127}`.
fn check_tag(tag: &str) -> std::result::Result<(), &'static str> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = tag.bytes();
    match bytes.next() {
        Some(first) if word(first) => {}
        _ => return Err("invalid tag"),
    }
    if tag.len() > MAX_TAG_LEN || !bytes.all(|b| word(b) || b == b'.' || b == b'-') {
        return Err("invalid tag");
    }
    Ok(())
}

/// Host components (`[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`) joined by
/// dots, then an optional `:port`; or a bracketed IPv6 address.
fn check_domain(domain: &str) -> std::result::Result<(), &'static str> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("invalid registry host")?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err("invalid registry host");
        }
        (None, after.strip_prefix(':'))
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        for part in host.split('.') {
            let ok = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-');
            if !ok {
                return Err("invalid registry host");
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("invalid registry port");
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_path_component(component: &str) -> std::result::Result<(), &'static str> {
    const BAD: &str = "invalid repository name component";
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err(BAD);
        }
        if i == bytes.len() {
            return Ok(());
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &component[sep_start..i] {
            "." | "_" | "__" => {}
            sep if sep.bytes().all(|b| b == b'-') => {}
            _ => return Err(BAD),
        }
    }
}

impl fmt::Display for Reference {
    /// The full normalized form, as kept in `index.json`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&with_suffixes(self.name(), self))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(norm("ghcr.io/a/b/c:v1.2-x_y"), "ghcr.io/a/b/c:v1.2-x_y");
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(
            norm(&format!("busybox@sha256:{HEX}")),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        assert_eq!(
            norm(&format!("busybox:1@sha256:{HEX}")),
            format!("docker.io/library/busybox:1@sha256:{HEX}")
        );
    }

    #[test]
    fn familiar_form_drops_the_defaults() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/busybox:latest"), "busybox:latest");
        assert_eq!(f("user/app:2"), "user/app:2");
        assert_eq!(f("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.with_tag("2").unwrap().familiar(), "busybox:2");
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            ":tag",
            "a//b",
            "a/-b",
            "a..b",
            "a___b",
            "bad host!/x",
            "host:port/x",
            "busybox@sha256:abc",
            HEX,
            &format!("x:{}", "t".repeat(129)),
            &"a".repeat(256),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Reference::parse(&format!("{HEX}:1")).is_ok());
        assert!(Reference::parse("a--b__c.d_e").is_ok());
    }
}
