use std::path::Path;

use berth_build::{BuildRequest, DockerfileSource};
use berth_spec::dockerignore::DockerIgnore;

use super::BuildInputs;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn context() -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", "FROM busybox\nCOPY . /app\n");
    write(ctx.path(), "src/main.txt", "one\n");
    write(ctx.path(), "logs/debug.log", "noise\n");
    write(ctx.path(), ".dockerignore", "logs\n");
    ctx
}

fn no_images(_: &str) -> Option<String> {
    None
}

fn request(ctx: &Path) -> BuildRequest {
    BuildRequest {
        context: ctx.to_owned(),
        tags: vec!["p-web".into()],
        ..BuildRequest::default()
    }
}

#[test]
fn context_digest_follows_content_not_stat_and_skips_ignored_files() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context();
    let inputs = BuildInputs::new(root.path());
    let ignore = DockerIgnore::parse("logs\n", Path::new(".dockerignore")).unwrap();
    let c = ctx.path().canonicalize().unwrap();
    let (first, read) = inputs.context_digest(&c, Some(&ignore)).unwrap();
    assert_eq!(read, 3, "Dockerfile, .dockerignore, src/main.txt");
    // Nothing changed: same digest, nothing re-read (the stat cache).
    let (again, read) = inputs.context_digest(&c, Some(&ignore)).unwrap();
    assert_eq!((again.as_str(), read), (first.as_str(), 0));
    // A restarted process reads the saved cache, not the files.
    let fresh = BuildInputs::new(root.path());
    assert_eq!(
        fresh.context_digest(&c, Some(&ignore)).unwrap(),
        (first.clone(), 0)
    );
    // An ignored file changes nothing.
    write(ctx.path(), "logs/debug.log", "more noise\n");
    assert_eq!(inputs.context_digest(&c, Some(&ignore)).unwrap().0, first);
    // Rewritten with the same content: re-read, same digest.
    write(ctx.path(), "src/main.txt", "one\n");
    let (same, read) = inputs.context_digest(&c, Some(&ignore)).unwrap();
    assert_eq!(same, first);
    assert_eq!(read, 1);
    // New content, a new file: new digests.
    write(ctx.path(), "src/main.txt", "two\n");
    let (edited, _) = inputs.context_digest(&c, Some(&ignore)).unwrap();
    assert_ne!(edited, first);
    write(ctx.path(), "src/extra.txt", "");
    assert_ne!(inputs.context_digest(&c, Some(&ignore)).unwrap().0, edited);
}

#[test]
fn stale_names_what_changed_and_only_for_the_image_it_built() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context();
    let inputs = BuildInputs::new(root.path());
    let req = request(ctx.path());
    let built = inputs.digest(&req, &no_images).unwrap();
    // No record: an image berth did not build is left alone.
    assert_eq!(inputs.stale("p-web", "sha256:aa", &built), None);
    inputs.record("p-web", &built, "sha256:aa");
    assert_eq!(
        inputs.stale(
            "p-web",
            "sha256:aa",
            &inputs.digest(&req, &no_images).unwrap()
        ),
        None
    );

    write(ctx.path(), "src/main.txt", "two\n");
    let now = inputs.digest(&req, &no_images).unwrap();
    assert_eq!(
        inputs.stale("p-web", "sha256:aa", &now).as_deref(),
        Some("the build context changed since p-web was built")
    );
    // A build of these inputs failed: not tried again until they change.
    inputs.record_failure("p-web", &now);
    assert_eq!(inputs.stale("p-web", "sha256:aa", &now), None);
    write(ctx.path(), "src/main.txt", "three\n");
    let now = inputs.digest(&req, &no_images).unwrap();
    assert!(inputs.stale("p-web", "sha256:aa", &now).is_some());
    // The reference now names another image (retagged by hand): not ours.
    assert_eq!(inputs.stale("p-web", "sha256:bb", &now), None);

    // The Dockerfile given inline, and a build arg: both are inputs.
    let inline = BuildRequest {
        dockerfile: Some(DockerfileSource::Inline("FROM busybox\n".into())),
        ..request(ctx.path())
    };
    let a = inputs.digest(&inline, &no_images).unwrap();
    inputs.record("p-web", &a, "sha256:aa");
    let mut with_arg = inline.clone();
    with_arg.build_args.insert("V".into(), "2".into());
    assert_eq!(
        inputs
            .stale(
                "p-web",
                "sha256:aa",
                &inputs.digest(&with_arg, &no_images).unwrap()
            )
            .as_deref(),
        Some("the build: section changed since p-web was built")
    );
    let other = BuildRequest {
        dockerfile: Some(DockerfileSource::Inline("FROM busybox\nRUN true\n".into())),
        ..request(ctx.path())
    };
    assert_eq!(
        inputs
            .stale(
                "p-web",
                "sha256:aa",
                &inputs.digest(&other, &no_images).unwrap()
            )
            .as_deref(),
        Some("the Dockerfile changed since p-web was built")
    );
}

#[test]
fn named_contexts_are_inputs_their_files_and_image_ids() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context();
    let shared = tempfile::tempdir().unwrap();
    write(shared.path(), "lib.txt", "one\n");
    let inputs = BuildInputs::new(root.path());
    let plain = request(ctx.path());
    let mut req = request(ctx.path());
    req.named_contexts.insert(
        "shared".into(),
        berth_build::NamedContext::Dir(shared.path().to_owned()),
    );
    req.named_contexts.insert(
        "base".into(),
        berth_build::NamedContext::Image("p-base".into()),
    );
    // Without named contexts the digest is what it was before they
    // existed (no new part): old records stay valid.
    assert!(
        !inputs
            .digest(&plain, &no_images)
            .unwrap()
            .parts
            .contains_key("contexts")
    );
    let base_v1 = |r: &str| (r == "p-base").then(|| "sha256:b1".to_owned());
    let built = inputs.digest(&req, &base_v1).unwrap();
    inputs.record("p-web", &built, "sha256:aa");
    assert_eq!(
        inputs.stale(
            "p-web",
            "sha256:aa",
            &inputs.digest(&req, &base_v1).unwrap()
        ),
        None
    );
    // A file of the named folder changes.
    write(shared.path(), "lib.txt", "two\n");
    assert_eq!(
        inputs
            .stale(
                "p-web",
                "sha256:aa",
                &inputs.digest(&req, &base_v1).unwrap()
            )
            .as_deref(),
        Some("a named build context changed since p-web was built")
    );
    let now = inputs.digest(&req, &base_v1).unwrap();
    inputs.record("p-web", &now, "sha256:aa");
    // The base service's image is rebuilt.
    let base_v2 = |r: &str| (r == "p-base").then(|| "sha256:b2".to_owned());
    assert!(
        inputs
            .stale(
                "p-web",
                "sha256:aa",
                &inputs.digest(&req, &base_v2).unwrap()
            )
            .is_some()
    );
}
