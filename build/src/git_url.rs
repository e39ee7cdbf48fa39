//! Git URLs as BuildKit reads them ([`GitRef::parse`]): `git://…`,
//! `ssh://…`, `git@host:…`, `github.com/…`, and `http(s)://` URLs whose
//! path ends in `.git`; a `#ref:subdir` fragment or the newer
//! `?ref=&tag=&branch=&subdir=&checksum=&keep-git-dir&submodules` query.
//! Fetching them is [`crate::git`]'s job.

/// A parsed git URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitRef {
    /// What `git` fetches from (without fragment and query).
    pub remote: String,
    /// Branch, tag, full ref name or commit; `None`: the remote's HEAD.
    pub reference: Option<String>,
    /// A folder of the repository to use instead of its root.
    pub subdir: Option<String>,
    /// `?checksum=` / `?commit=`: the commit the ref must resolve to.
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub submodules: Option<bool>,
}

/// Whether `s` names a git repository (BuildKit's rules; a plain
/// `http(s)://` URL is a download unless its path ends in `.git`).
pub fn is_git_url(s: &str) -> bool {
    if s.starts_with("git://") || s.starts_with("ssh://") || s.starts_with("github.com/") {
        return true;
    }
    if let Some(rest) = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
    {
        let path = rest.split(['#', '?']).next().unwrap_or_default();
        return path.ends_with(".git");
    }
    scp_like(s)
}

/// `user@host:path` (scp syntax), as `git@github.com:org/repo.git`.
fn scp_like(s: &str) -> bool {
    let Some((user_host, path)) = s.split_once(':') else {
        return false;
    };
    let Some((user, host)) = user_host.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && !host.is_empty()
        && !path.is_empty()
        && !path.starts_with("//")
        && user_host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c))
}

fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("") => Ok(true),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(format!(
            "invalid {key} value: {v:?} (expected true or false)"
        )),
    }
}

impl GitRef {
    /// Parses a git URL with its `#ref:subdir` fragment and query.
    pub fn parse(url: &str) -> Result<GitRef, String> {
        if !is_git_url(url) {
            return Err(format!("{url:?} is not a git URL"));
        }
        let (before_fragment, fragment) = match url.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (url, None),
        };
        let (remote, query) = match before_fragment.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (before_fragment, None),
        };
        let remote = match remote.strip_prefix("github.com/") {
            Some(path) => format!("https://github.com/{path}"),
            None => remote.to_owned(),
        };
        let mut git = GitRef {
            remote,
            ..GitRef::default()
        };
        if let Some(fragment) = fragment {
            let (reference, subdir) = match fragment.split_once(':') {
                Some((r, d)) => (r, Some(d)),
                None => (fragment, None),
            };
            git.reference = Some(reference).filter(|r| !r.is_empty()).map(str::to_owned);
            git.subdir = subdir.filter(|d| !d.is_empty()).map(str::to_owned);
        }
        if let Some(query) = query {
            git.load_query(query)?;
        }
        Ok(git)
    }

    fn load_query(&mut self, query: &str) -> Result<(), String> {
        let mut tag = None;
        let mut branch = None;
        let mut seen = std::collections::HashSet::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            if !seen.insert(key.to_owned()) {
                return Err(format!("query {key:?} has multiple values"));
            }
            let required = || {
                value
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("query {key:?} has no value"))
            };
            let set = |slot: &mut Option<String>, what: &str, v: String| {
                match slot {
                    Some(old) if *old != v => {
                        return Err(format!("{what} conflicts: {old:?} vs {v:?}"));
                    }
                    _ => *slot = Some(v),
                }
                Ok(())
            };
            match key {
                "ref" => set(&mut self.reference, "ref", required()?)?,
                "tag" => tag = Some(required()?),
                "branch" => branch = Some(required()?),
                "subdir" => set(&mut self.subdir, "subdir", required()?)?,
                "checksum" | "commit" => self.checksum = Some(required()?),
                "keep-git-dir" => self.keep_git_dir = Some(parse_bool(key, value)?),
                "submodules" => self.submodules = Some(parse_bool(key, value)?),
                other => return Err(format!("unexpected query {other:?} in git URL")),
            }
        }
        if tag.is_some() && branch.is_some() {
            return Err("branch conflicts with tag".into());
        }
        if let Some(t) = tag {
            let full = if t.starts_with("refs/tags/") {
                t
            } else {
                format!("refs/tags/{t}")
            };
            match &self.reference {
                Some(old) if *old != full => {
                    return Err(format!("ref conflicts: {old:?} vs {full:?}"));
                }
                _ => self.reference = Some(full),
            }
        }
        if let Some(b) = branch {
            let full = if b.starts_with("refs/heads/") {
                b
            } else {
                format!("refs/heads/{b}")
            };
            match &self.reference {
                Some(old) if *old != full => {
                    return Err(format!("ref conflicts: {old:?} vs {full:?}"));
                }
                _ => self.reference = Some(full),
            }
        }
        if self.reference.is_none() {
            self.reference = self.checksum.clone();
        }
        Ok(())
    }

    /// `remote` for messages and logs: user info in a URL remote
    /// (`https://user:token@host/...`, `https://token@host/...`) may be a
    /// credential, so it is shown as `***`.
    pub fn shown_remote(&self) -> String {
        let Some((scheme, rest)) = self.remote.split_once("://") else {
            return self.remote.clone();
        };
        let authority = rest.split('/').next().unwrap_or_default();
        match authority.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority.len()..]),
            None => self.remote.clone(),
        }
    }

    pub(crate) fn is_http(&self) -> bool {
        self.remote.starts_with("http://") || self.remote.starts_with("https://")
    }

    pub(crate) fn host(&self) -> Option<&str> {
        let rest = self
            .remote
            .split_once("://")
            .map(|(_, r)| r)
            .or_else(|| self.remote.split_once('@').map(|(_, r)| r))?;
        let host = rest.split(['/', ':']).next()?;
        let host = host.rsplit('@').next()?;
        Some(host)
    }
}
