//! End-to-end: ADD of local archives (unpacked), of http URLs (served on
//! 127.0.0.1 by the test; `--checksum`), and the refusals (an unreachable
//! git URL, a wrong checksum).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod runtime_support;

use std::io::{Read, Write};
use std::net::TcpListener;

use build_support::{BUSYBOX_STAGE, build, build_ok, context, counts, sh};
use runtime_support::text;

/// Serves `body` as `/files/payload.txt` to every request until the
/// process ends; returns the port.
fn serve(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn add_unpacks_archives_and_downloads_urls() {
    if !build_support::need_root_and_net("add_unpacks_archives_and_downloads_urls") {
        return;
    }
    let root = build_support::root("build-add");
    let port = serve("downloaded\n");
    let sum = "sha256:a2b4d4d7b7ff0d9acf1ab6e7cc0b5a0fb44ea0b5eef8c4a1b8b4b43c1c8c6b2e";
    let dockerfile = format!(
        "{BUSYBOX_STAGE}\
ADD tree.tar.gz /unpacked/
ADD tree.tar.bz2 /bz/
ADD tree.tar.xz /xz/
ADD plain.txt /plain.txt
ADD http://127.0.0.1:{port}/files/payload.txt /dl/
ADD --chmod=0644 http://127.0.0.1:{port}/files/payload.txt /named.txt
"
    );
    let ctx = context(
        &root,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            ("plain.txt", "plain\n"),
            ("tree/a/b.txt", "in archive\n"),
        ],
    );
    let st = std::process::Command::new("tar")
        .args(["czf", "tree.tar.gz", "-C", "tree", "."])
        .current_dir(&ctx)
        .status()
        .unwrap();
    assert!(st.success());
    // bzip2 and xz archives come from the host's tools when it has them;
    // otherwise a plain tar stands in under that name, and that part of
    // the test says it was skipped.
    for (flag, name, tool) in [("-j", "tree.tar.bz2", "bzip2"), ("-J", "tree.tar.xz", "xz")] {
        let have = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        let mut args = vec!["c", "-f", name, "-C", "tree", "."];
        if have {
            args.insert(1, flag);
        } else {
            eprintln!("SKIPPED: ADD of a {tool} archive ({tool} is not installed to make one)");
        }
        let st = std::process::Command::new("tar")
            .args(&args)
            .current_dir(&ctx)
            .status()
            .unwrap();
        assert!(st.success(), "tar {args:?}");
    }
    let progress = build_ok(&root, &ctx, &["-t", "add:1"]);
    assert_eq!(
        sh(
            &root,
            "add:1",
            "cat /unpacked/a/b.txt /bz/a/b.txt /xz/a/b.txt /plain.txt /dl/payload.txt; stat -c '%a %Y' /dl/payload.txt /named.txt"
        ),
        "in archive\nin archive\nin archive\nplain\ndownloaded\n600 784111777\n644 784111777\n",
        "{progress}"
    );
    // Unchanged content: cached, though the URL was fetched again.
    assert_eq!(counts(&build_ok(&root, &ctx, &["-t", "add:1"])).0, 0);
    // A wrong checksum fails the step and names both digests.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nADD --checksum={sum} http://127.0.0.1:{port}/files/payload.txt /x\n"
        ),
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(err.contains("does not match"), "{err}");
    // The right one passes.
    let right = format!(
        "sha256:{}",
        text(
            &std::process::Command::new("sh")
                .arg("-c")
                .arg("printf 'downloaded\\n' | sha256sum | cut -d' ' -f1")
                .output()
                .unwrap()
                .stdout
        )
        .trim()
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nADD --checksum={right} http://127.0.0.1:{port}/files/payload.txt /x\n"
        ),
    )
    .unwrap();
    build_ok(&root, &ctx, &[]);
    // A `.git` URL is a git repository, not a download (tests/build_git.rs
    // serves real ones): an unreachable one is named.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD http://127.0.0.1:1/repo.git /src\n",
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        err.contains("cannot reach git repository http://127.0.0.1:1/repo.git"),
        "{err}"
    );
}
