//! `RUN --mount=...` specifications, parsed like BuildKit's `runmount.go`:
//! [`Mount`] with its [`MountType`] and [`CacheSharing`]. The spec is CSV
//! (`type=cache,target=/root/.cache,sharing=locked`).

/// What kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount`. Values are as written (variables not yet expanded);
/// numeric options that still hold a `$` reference are left `None` until
/// [`Mount::parse`] is called again with an expander.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    /// The `--mount` value as written.
    pub spec: String,
    #[serde(rename = "type")]
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// A stage name, stage index or image to take `source` from.
    pub from: Option<String>,
    pub readonly: bool,
    /// Cache, secret or ssh id.
    pub id: Option<String>,
    pub sharing: Option<CacheSharing>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// Secret exposed as this environment variable.
    pub env: Option<String>,
}

/// Turns a raw option value into its final text (variable expansion).
pub type ValueExpander<'a> = &'a dyn Fn(&str) -> Result<String, String>;

impl Mount {
    /// Parses one `--mount` value. With `expand`, every value is expanded
    /// first; without it, values are kept as written.
    pub fn parse(spec: &str, expand: Option<ValueExpander<'_>>) -> Result<Self, String> {
        let mut m = Mount {
            spec: spec.to_string(),
            kind: MountType::Bind,
            target: None,
            source: None,
            from: None,
            readonly: false,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            required: false,
            size: None,
            env: None,
        };
        let mut readonly: Option<bool> = None;
        for field in csv_fields(spec)? {
            let Some((key, raw)) = field.split_once('=') else {
                match field.to_ascii_lowercase().as_str() {
                    "readonly" | "ro" => readonly = Some(true),
                    "readwrite" | "rw" => readonly = Some(false),
                    "required" => m.required = true,
                    _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
                }
                continue;
            };
            let value = match expand {
                Some(f) => f(raw)?,
                None => raw.to_string(),
            };
            // Without an expander a `$` reference cannot be interpreted yet.
            let deferred = expand.is_none() && value.contains('$');
            match key.to_ascii_lowercase().as_str() {
                "type" => {
                    m.kind = match value.to_ascii_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => return Err(format!("unsupported mount type {value:?}")),
                    }
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => readonly = Some(parse_bool(key, &value)?),
                "readwrite" | "rw" => readonly = Some(!parse_bool(key, &value)?),
                "required" => m.required = parse_bool(key, &value)?,
                "id" => m.id = Some(value),
                "env" => m.env = Some(value),
                "sharing" => {
                    m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                        "shared" => CacheSharing::Shared,
                        "private" => CacheSharing::Private,
                        "locked" => CacheSharing::Locked,
                        _ => return Err(format!("unsupported sharing value {value:?}")),
                    })
                }
                "mode" if !deferred => {
                    m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| {
                        format!("invalid value for mode: {value:?} (expected octal)")
                    })?)
                }
                "uid" if !deferred => m.uid = Some(parse_u32(key, &value)?),
                "gid" if !deferred => m.gid = Some(parse_u32(key, &value)?),
                "size" if !deferred => m.size = Some(parse_size(&value)?),
                "mode" | "uid" | "gid" | "size" => {}
                other => return Err(format!("unexpected key '{other}' in '{field}'")),
            }
        }
        m.validate(readonly)?;
        Ok(m)
    }

    fn validate(&mut self, readonly: Option<bool>) -> Result<(), String> {
        // Bind mounts are read-only unless `rw` is given.
        self.readonly = readonly.unwrap_or(self.kind == MountType::Bind);
        if self.sharing.is_some() && self.kind != MountType::Cache {
            return Err("sharing is only valid for cache mounts".to_string());
        }
        if self.from.is_some() && !matches!(self.kind, MountType::Bind | MountType::Cache) {
            return Err(format!(
                "{} mounts cannot have a from",
                type_name(self.kind)
            ));
        }
        match self.kind {
            MountType::Secret => {
                if self.id.is_none()
                    && self.target.is_none()
                    && self.source.is_none()
                    && self.env.is_none()
                {
                    return Err(
                        "invalid secret mount: one of id, target or env is required".to_string()
                    );
                }
                if self.id.is_none() {
                    self.id = self
                        .source
                        .clone()
                        .or_else(|| self.target.as_deref().map(base_name));
                }
            }
            MountType::Ssh => {
                if self.id.is_none() {
                    self.id = Some("default".to_string());
                }
            }
            MountType::Bind | MountType::Cache | MountType::Tmpfs => {
                if self.target.as_deref().is_none_or(str::is_empty) {
                    return Err(format!("{} mount requires a target", type_name(self.kind)));
                }
                if self.kind == MountType::Cache && self.sharing.is_none() {
                    self.sharing = Some(CacheSharing::Shared);
                }
            }
        }
        Ok(())
    }
}

fn type_name(kind: MountType) -> &'static str {
    match kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

fn base_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "invalid value for {key}: {value:?} (expected true or false)"
        )),
    }
}

fn parse_u32(key: &str, value: &str) -> Result<u32, String> {
    value
        .parse()
        .map_err(|_| format!("invalid value for {key}: {value:?} (expected a number)"))
}

/// go-units `RAMInBytes`: `64m`, `1.5g`, `512 KiB`, binary multiples.
fn parse_size(value: &str) -> Result<u64, String> {
    let bad = || format!("invalid size: {value:?} (expected e.g. 64m or 1g)");
    let num_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (num, unit) = value.split_at(num_end);
    let number: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let bytes = (number * multiplier as f64) as u64;
    Ok(bytes)
}

/// Splits one CSV record: commas separate fields; a field that starts with
/// `"` runs to the closing quote, `""` inside standing for one quote.
fn csv_fields(spec: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = spec.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in mount {spec:?}")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(c) => {
                    return Err(format!(
                        "unexpected {c:?} after quoted field in mount {spec:?}"
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_with_options() {
        let m = Mount::parse(
            "type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0755,uid=1000",
            None,
        )
        .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!((m.mode, m.uid, m.gid), (Some(0o755), Some(1000), None));
        assert!(!m.readonly);
    }

    #[test]
    fn bind_defaults_read_only() {
        let m = Mount::parse("target=/src,from=build,source=/out", None).unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.readonly);
        let m = Mount::parse("type=bind,target=/src,rw", None).unwrap();
        assert!(!m.readonly);
    }

    #[test]
    fn secret_ssh_and_tmpfs() {
        let m = Mount::parse("type=secret,id=npmrc,target=/root/.npmrc,required", None).unwrap();
        assert_eq!((m.id.as_deref(), m.required), (Some("npmrc"), true));
        let m = Mount::parse("type=secret,target=/run/secrets/token", None).unwrap();
        assert_eq!(m.id.as_deref(), Some("token"));
        let m = Mount::parse("type=ssh", None).unwrap();
        assert_eq!(m.id.as_deref(), Some("default"));
        let m = Mount::parse("type=tmpfs,target=/tmp,size=64m", None).unwrap();
        assert_eq!(m.size, Some(64 << 20));
    }

    #[test]
    fn errors_and_deferred_values() {
        assert!(
            Mount::parse("type=volume,target=/x", None)
                .unwrap_err()
                .contains("unsupported mount type")
        );
        assert!(
            Mount::parse("type=cache", None)
                .unwrap_err()
                .contains("requires a target")
        );
        assert!(
            Mount::parse("type=cache,target=/x,bogus=1", None)
                .unwrap_err()
                .contains("unexpected key 'bogus'")
        );
        assert!(Mount::parse("type=bind,target=/x,sharing=locked", None).is_err());
        let m = Mount::parse("type=cache,target=/x,uid=$UID", None).unwrap();
        assert_eq!(m.uid, None);
        let expand = |v: &str| Ok::<_, String>(v.replace("$UID", "42"));
        let m = Mount::parse("type=cache,target=/x,uid=$UID", Some(&expand)).unwrap();
        assert_eq!(m.uid, Some(42));
        let m = Mount::parse("\"type=bind\",\"target=/a,b\"", None).unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }
}
