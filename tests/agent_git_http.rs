//! Git sync over http with a token: a tiny dumb-protocol git server on
//! 127.0.0.1 (serving the bare repository's files) that wants HTTP Basic
//! credentials. The agent's token reaches it, and nowhere else: not the
//! status, not the log, not git's argv. A wrong token is reported as
//! `AuthenticationFailed`. Root only (the agent's private network
//! namespace); SKIPPED without `git`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod git_support;
mod runtime_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_support::{Agent, TempDir};
use git_support::{Remote, condition, detail, git, have_git, source, until};
use runtime_support::{Root, need_root, private_netns};

const GIT_TOKEN: &str = "glpat-e2e-Secr3t-0123456789";

/// `base64("git:" + GIT_TOKEN)`, what git must send.
fn expected_basic() -> String {
    let raw = format!("git:{GIT_TOKEN}");
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in raw.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// Serves the files under `root` to requests carrying `Authorization:
/// <auth>`; 401 to the others. Records each request's path and whether it
/// was authorized. Runs until the process ends (the listener's thread is
/// detached; each test has its own port).
/// Each request's path, and whether it carried the credentials.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

fn serve(root: PathBuf, auth: String) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut authorized = false;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                    && value.trim() == auth
                {
                    authorized = true;
                }
            }
            log.lock().unwrap().push((path.clone(), authorized));
            let file = root.join(path.split('?').next().unwrap().trim_start_matches('/'));
            let response = if !authorized {
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            } else if let Ok(body) = std::fs::read(&file)
                .map_err(drop)
                .and_then(|b| if file.is_file() { Ok(b) } else { Err(()) })
            {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend(body);
                r
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = stream.write_all(&response);
        }
    });
    (addr, seen)
}

fn start(url: &str, root: &Root, token_file: &std::path::Path, hook: &std::path::Path) -> Agent {
    let root_dir = root.dir.display().to_string();
    let token_file = token_file.display().to_string();
    let hook = hook.display().to_string();
    Agent::start_args(&[
        "--git",
        url,
        "--git-token-file",
        &token_file,
        "--git-webhook-secret-file",
        &hook,
        "--git-interval",
        "1s",
        "--listen",
        "127.0.0.1:0",
        "--root",
        &root_dir,
        "--resync-interval",
        "1h",
    ])
}

#[test]
fn a_token_authenticates_over_http_and_never_shows() {
    if !need_root("a_token_authenticates_over_http_and_never_shows")
        || !have_git("a_token_authenticates_over_http_and_never_shows")
    {
        return;
    }
    private_netns();
    let root = Root::new("git-http");
    let remote = Remote::new("git-http");
    remote.write("empty/compose.yaml", "name: empty\nservices: {}\n");
    let c1 = remote.commit("an empty project");
    // The dumb protocol reads info/refs, which this writes.
    git(&remote.bare(), &["update-server-info"]);
    let (addr, seen) = serve(remote.tmp.path().to_path_buf(), expected_basic());
    let url = format!("http://{addr}/remote.git");
    let secrets = TempDir::new("git-http-token");
    let token_file = secrets.write("token", &format!("{GIT_TOKEN}\n"));
    let hook = secrets.write("hook", "hook-secret-42\n");

    let agent = start(&url, &root, &token_file, &hook);
    until(&agent, "the project from the http remote", || {
        detail(&agent, "empty").map(drop)
    });
    let src = source(&agent);
    assert_eq!(src["revision"], format!("main@sha1:{c1}"));
    assert_eq!(src["url"], url.as_str());
    assert_eq!(
        condition(&src["conditions"], "SourceReady")["status"],
        "True"
    );
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter().any(|(p, ok)| *ok && p.contains("info/refs")),
            "{seen:?}"
        );
        assert!(
            seen.iter().all(|(_, ok)| *ok),
            "a request without the token: {seen:?}"
        );
    }
    // The token is in no answer and no log line.
    let (_, detail_body) = agent.get("/api/v1/projects/empty");
    let (_, events) = agent.get("/api/v1/events?watch=false");
    let log = agent.log();
    let basic = expected_basic();
    let encoded = basic.trim_start_matches("Basic ");
    for (what, text) in [
        ("source", src.to_string()),
        ("detail", detail_body),
        ("events", events),
        ("log", log.clone()),
    ] {
        assert!(!text.contains(GIT_TOKEN), "the token is in the {what}");
        assert!(
            !text.contains(encoded),
            "the encoded token is in the {what}"
        );
    }
    assert!(log.contains("ls-remote"), "git calls are logged: {log}");

    // A forge's push webhook (GitLab's form: the secret in a header)
    // triggers a fetch; this agent has no API token, so nothing else can.
    let hook_call = |secret: &str| {
        let mut stream = std::net::TcpStream::connect(&agent.addr).unwrap();
        write!(
            stream,
            "POST /api/v1/source/refresh?wait=true HTTP/1.1\r\nHost: berth\r\n\
             X-Gitlab-Token: {secret}\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        answer
    };
    remote.write("more/compose.yaml", "name: more\nservices: {}\n");
    let c2 = remote.commit("more");
    git(&remote.bare(), &["update-server-info"]);
    let answer = hook_call("hook-secret-42");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\"result\":\"Updated\"") || answer.contains("\"result\":\"Unchanged\""),
        "{answer}"
    );
    until(&agent, "commit 2 through the webhook", || {
        (source(&agent)["revision"] == format!("main@sha1:{c2}").as_str()).then_some(())
    });
    let answer = hook_call("not-the-secret");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    // A wrong token: refused, said so, nothing served.
    let wrong = secrets.write("wrong", "nope\n");
    let root2 = Root::new("git-http-wrong");
    let agent2 = start(&url, &root2, &wrong, &hook);
    let src = until(&agent2, "the authentication failure", || {
        let s = source(&agent2);
        s["lastError"].as_str().map(drop).map(|()| s)
    });
    let ready = condition(&src["conditions"], "SourceReady");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "AuthenticationFailed", "{ready}");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("nothing checked out yet")
    );
    let (code, body) = agent2.get("/readyz");
    assert_eq!(code, 503);
    assert!(body.contains("waiting for the first checkout"), "{body}");
    assert!(agent2.items().is_empty());
}

/// A remote that accepts and never answers: the call is killed after
/// `--git-timeout`, said as `FetchTimedOut`, and retried.
#[test]
fn a_remote_that_hangs_is_timed_out_and_retried() {
    if !need_root("a_remote_that_hangs_is_timed_out_and_retried")
        || !have_git("a_remote_that_hangs_is_timed_out_and_retried")
    {
        return;
    }
    private_netns();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            // Kept open, never answered.
            held.extend(stream.ok());
        }
    });
    let root = Root::new("git-hang");
    let root_dir = root.dir.display().to_string();
    let url = format!("http://{addr}/remote.git");
    let agent = Agent::start_args(&[
        "--git",
        &url,
        "--git-timeout",
        "1s",
        "--git-interval",
        "2s",
        "--listen",
        "127.0.0.1:0",
        "--root",
        &root_dir,
    ]);
    let src = until(&agent, "two timed out syncs", || {
        let s = source(&agent);
        (s["consecutiveFailures"].as_u64()? >= 2).then_some(s)
    });
    let ready = condition(&src["conditions"], "SourceReady");
    assert_eq!(ready["reason"], "FetchTimedOut", "{ready}");
    assert!(
        src["lastError"]
            .as_str()
            .unwrap()
            .contains("no answer within 1s"),
        "{src}"
    );
}
