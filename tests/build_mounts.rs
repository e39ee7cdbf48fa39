//! End-to-end: RUN `--mount` kinds (cache, secret as file and env, bind
//! from the context read-only and rw, bind from a stage, tmpfs), and what
//! they must not leave behind: the secret, mount points, writes to a bind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod runtime_support;

use build_support::{BUSYBOX_STAGE, build, build_ok, context, counts, sh};
use runtime_support::text;

#[test]
fn run_mounts_work_and_leave_nothing_in_the_image() {
    if !build_support::need_root_and_net("run_mounts_work_and_leave_nothing_in_the_image") {
        return;
    }
    let root = build_support::root("build-mounts");
    let dockerfile = format!(
        "{BUSYBOX_STAGE}
FROM bb
RUN --mount=type=cache,target=/cache,id=c1 echo run >> /cache/log && echo \"cache-runs=$(wc -l < /cache/log)\"
RUN --mount=type=secret,id=tok cp /run/secrets/tok /dev/null && echo \"secret-file=$(cat /run/secrets/tok)\"
RUN --mount=type=secret,id=tok,env=TOKEN echo \"secret-env=$TOKEN\"
RUN --mount=type=bind,source=data,target=/mnt cp /mnt/f.txt /copied
RUN --mount=type=bind,source=data,target=/mnt,rw echo x > /mnt/new
RUN --mount=type=tmpfs,target=/t echo scratch > /t/x && cat /t/x
RUN --mount=type=bind,from=bb,source=/bin,target=/other test -e /other/busybox && echo from-stage-ok
"
    );
    let ctx = context(
        &root,
        "ctx",
        &[("Dockerfile", &dockerfile), ("data/f.txt", "bound\n")],
    );
    let secret = root.dir.join("secret.txt");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let secret_arg = format!("id=tok,src={}", secret.display());
    let progress = build_ok(&root, &ctx, &["-t", "m:1", "--secret", &secret_arg]);
    for want in [
        "cache-runs=1",
        "secret-file=s3cr3t",
        "secret-env=s3cr3t",
        "scratch",
        "from-stage-ok",
    ] {
        assert!(progress.contains(want), "{want} missing in:\n{progress}");
    }
    // rw bind writes are thrown away.
    assert!(!ctx.join("data/new").exists());
    assert_eq!(
        sh(
            &root,
            "m:1",
            "cat /copied; for d in /run /cache /mnt /t /other; do test -e $d && echo \"$d left\"; done; true"
        ),
        "bound\n"
    );
    // The secret is in no layer blob.
    let blobs = root.dir.join("content/blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let p = entry.unwrap().path();
        let listing = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(tar xzOf {0} 2>/dev/null || cat {0}) | grep -c s3cr3t",
                p.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            text(&listing.stdout).trim(),
            "0",
            "secret found in blob {}",
            p.display()
        );
    }
    // The cache mount outlives the build; the secret is not in the key.
    let again = build_ok(
        &root,
        &ctx,
        &["-t", "m:1", "--no-cache", "--secret", &secret_arg],
    );
    assert!(again.contains("cache-runs=2"), "{again}");
    std::fs::write(&secret, "other").unwrap();
    assert_eq!(
        counts(&build_ok(
            &root,
            &ctx,
            &["-t", "m:1", "--secret", &secret_arg]
        ))
        .0,
        0
    );
    // A change in a bound source reruns the step that binds it.
    std::fs::write(ctx.join("data/f.txt"), "changed\n").unwrap();
    let changed = build_ok(&root, &ctx, &["-t", "m:1", "--secret", &secret_arg]);
    assert_eq!(sh(&root, "m:1", "cat /copied"), "changed\n", "{changed}");
    // A required secret that was not given fails the step by name.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}RUN --mount=type=secret,id=missing,required true\n"),
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(err.contains("secret missing is required"), "{err}");
}
