//! Where the API listens: a loopback TCP address by default, any TCP address
//! only with `--allow-remote` (reads are not authenticated; only mutating
//! calls need the token), or a Unix socket (`unix:/path`) that only its
//! owner can connect to.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;

/// A parsed `--listen` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl ListenAddr {
    /// Parses `HOST:PORT`, `localhost:PORT` or `unix:/path`, refusing
    /// non-loopback hosts unless `allow_remote`.
    pub fn parse(text: &str, allow_remote: bool) -> anyhow::Result<Self> {
        if let Some(path) = text.strip_prefix("unix:") {
            anyhow::ensure!(!path.is_empty(), "--listen unix: needs a socket path");
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let addr = match text.strip_prefix("localhost:") {
            Some(port) => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port.parse()
                    .with_context(|| format!("--listen {text:?}: invalid port"))?,
            ),
            None => text.parse().with_context(|| {
                format!("--listen {text:?}: expected HOST:PORT (e.g. 127.0.0.1:7878) or unix:/path")
            })?,
        };
        if !addr.ip().is_loopback() && !allow_remote {
            anyhow::bail!(
                "refusing to listen on {addr}: it is not a loopback address and the API's reads \
                 (status, metrics, project models) are not authenticated; use 127.0.0.1 or \
                 unix:/path, or pass --allow-remote if a firewall or proxy protects it"
            );
        }
        Ok(Self::Tcp(addr))
    }
}

/// A bound listener, ready to serve.
pub enum Bound {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Bound {
    pub async fn bind(addr: &ListenAddr) -> anyhow::Result<Self> {
        match addr {
            ListenAddr::Tcp(a) => {
                let listener = tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a}"))?;
                Ok(Self::Tcp(listener))
            }
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = tokio::net::UnixListener::bind(path)
                    .with_context(|| format!("cannot listen on unix:{}", path.display()))?;
                // Owner only: whoever can connect can read every project's
                // model (environment included).
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot restrict {}", path.display()))?;
                Ok(Self::Unix(listener, path.clone()))
            }
        }
    }

    /// The address actually bound (the real port when 0 was asked for), in
    /// the form `--listen` takes.
    pub fn local_addr(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "tcp:?".into()),
            Self::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// Serves `app` until `shutdown` resolves, then lets in-flight requests
    /// finish. A Unix socket file is removed afterwards.
    pub async fn serve(
        self,
        app: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        match self {
            Self::Tcp(l) => axum::serve(l, app)
                .with_graceful_shutdown(shutdown)
                .await
                .context("HTTP server failed"),
            Self::Unix(l, path) => {
                let result = axum::serve(l, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("HTTP server failed");
                let _ = std::fs::remove_file(&path);
                result
            }
        }
    }
}

/// A socket file left by a previous run would make bind fail; anything else
/// at that path is not ours to delete.
fn remove_stale_socket(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display())),
        Ok(_) => anyhow::bail!(
            "--listen unix:{}: the path exists and is not a socket",
            path.display()
        ),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_unix_are_accepted() {
        assert_eq!(
            ListenAddr::parse("127.0.0.1:7878", false).unwrap(),
            ListenAddr::Tcp("127.0.0.1:7878".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("[::1]:0", false).unwrap(),
            ListenAddr::Tcp("[::1]:0".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("localhost:9", false).unwrap(),
            ListenAddr::Tcp("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("unix:/run/berth.sock", false).unwrap(),
            ListenAddr::Unix("/run/berth.sock".into())
        );
    }

    #[test]
    fn remote_needs_allow_remote() {
        let err = ListenAddr::parse("0.0.0.0:7878", false).unwrap_err();
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(ListenAddr::parse("0.0.0.0:7878", true).is_ok());
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(ListenAddr::parse("nonsense", false).is_err());
        assert!(ListenAddr::parse("unix:", false).is_err());
        assert!(ListenAddr::parse("localhost:http", false).is_err());
    }

    #[tokio::test]
    async fn unix_socket_binds_and_replaces_a_stale_one() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("api.sock");
        let addr = ListenAddr::Unix(path.clone());
        let first = Bound::bind(&addr).await.unwrap();
        drop(first);
        // The socket file stays behind after drop; binding again must work.
        let second = Bound::bind(&addr).await.unwrap();
        assert_eq!(second.local_addr(), format!("unix:{}", path.display()));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "not a socket").unwrap();
        assert!(Bound::bind(&addr).await.is_err());
    }
}
