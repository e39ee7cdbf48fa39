//! A small HTTP/1.1 client for the CLI verbs that talk to a running
//! `berth agent` (`rollback`, `history`): one request per connection, over
//! TCP or the agent's Unix socket, with the API token of `--token-file` or
//! `BERTH_API_TOKEN`. The agent's answers are small JSON bodies.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the agent listens and how to authenticate, shared by the verbs.
#[derive(Debug, clap::Args)]
pub struct AgentConnection {
    /// The agent's API address: `HOST:PORT` or `unix:/path/to.sock` (its
    /// `--listen`).
    #[arg(
        long = "agent",
        value_name = "ADDR",
        default_value = "127.0.0.1:7878",
        env = "BERTH_LISTEN"
    )]
    pub address: String,
    /// A file holding the agent's API token; else `BERTH_API_TOKEN`.
    #[arg(long, value_name = "FILE", env = "BERTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// A response: status code and parsed JSON body (`Null` when empty).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The API's error message (`{message}`), or the raw body.
    pub fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| self.body.to_string())
    }
}

impl AgentConnection {
    fn token(&self) -> anyhow::Result<Option<String>> {
        let text = match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("--token-file {}", path.display()))?,
            None => match std::env::var("BERTH_API_TOKEN") {
                Ok(t) => t,
                Err(_) => return Ok(None),
            },
        };
        Ok(Some(
            text.lines().next().unwrap_or_default().trim().to_owned(),
        ))
    }

    /// Sends `method path` and reads the whole answer.
    pub fn call(&self, method: &str, path: &str, timeout: Duration) -> anyhow::Result<Answer> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth-agent\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n"
        );
        if let Some(token) = self.token()? {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        let raw = self
            .exchange(request.as_bytes(), timeout)
            .with_context(|| {
                format!(
                    "cannot reach the agent at {} (is `berth agent` running? see --agent)",
                    self.address
                )
            })?;
        parse_response(&raw)
    }

    fn exchange(&self, request: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        if let Some(path) = self.address.strip_prefix("unix:") {
            let mut s = std::os::unix::net::UnixStream::connect(path)?;
            s.set_read_timeout(Some(timeout))?;
            s.write_all(request)?;
            s.read_to_end(&mut raw)?;
        } else {
            let mut s = std::net::TcpStream::connect(&self.address)?;
            s.set_read_timeout(Some(timeout))?;
            s.write_all(request)?;
            s.read_to_end(&mut raw)?;
        }
        Ok(raw)
    }
}

fn parse_response(raw: &[u8]) -> anyhow::Result<Answer> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("the agent's answer has no HTTP header");
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .context("the agent's answer has no status line")?;
    let chunked = lines.any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Ok(Answer { status, body })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            bail!("a chunked answer was cut short");
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a malformed chunk size")?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            bail!("a chunked answer was cut short");
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// `text` safe in a URL path segment or query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_parsed_plain_and_chunked() {
        let plain = b"HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"message\":\"x\"}";
        let a = parse_response(plain).unwrap();
        assert_eq!(a.status, 409);
        assert_eq!(a.message(), "x");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
        let a = parse_response(chunked).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.body["a"], 1);
        assert!(parse_response(b"garbage").is_err());
        assert_eq!(encode("my app/1"), "my%20app%2F1");
    }
}
