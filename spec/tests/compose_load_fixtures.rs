//! compose-go's loader fixtures (shared `compose-go/EXPECTATIONS.md`,
//! section 2) run through `berth_spec::compose::load`, with the fixtures
//! read in place (sections 3, 5 and 7: `compose_load_cli.rs`). Each row is one case; each driver prints a pass
//! count. Rows compose-go runs with path resolution off assert the absolute
//! equivalent (berth always resolves). Rows that cannot apply are listed in
//! `CONFORMANCE_EXCEPTIONS.md` and asserted here as they behave.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use std::path::PathBuf;

use berth_spec::compose::LoadOptions;
use support::*;

fn loader_dir() -> PathBuf {
    compose_go("loader")
}

fn testdata(rel: &str) -> PathBuf {
    compose_go("loader/testdata").join(rel)
}

fn s(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

/// An inline compose file (like compose-go's `(inline)` ConfigFile) in a
/// temp folder, loaded with `project_dir` as the project directory, the way
/// the Go tests set `WorkingDir` to the loader package folder.
fn inline(project: &TempProject, project_dir: PathBuf, env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        project_directory: Some(project_dir),
        ..project.options(&["compose.yaml"], env)
    }
}

// ---- section 2: loader fixtures ---------------------------------------

fn env_files_example1_example2() {
    // TestDiscardEnvFileOption (the "discard" option itself: see exceptions).
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: env\nservices:\n  web:\n    image: nginx\n    env_file:\n      - example1.env\n      - path: example2.env\n        required: false\n",
    )]);
    let loaded = load_ok(&inline(&p, loader_dir(), &[]));
    let web = service(&loaded, "web");
    assert_eq!(
        environment(web),
        pairs(&[
            ("BAR", "bar_from_env_file_2"),
            ("BAZ", "baz_from_env_file"),
            ("ENV.WITH.DOT", "ok"),
            ("ENV_WITH_UNDERSCORE", "ok"),
            ("FOO", "foo_from_env_file"),
            ("QUX", "quz_from_env_file_2"),
        ])
    );
    let files: Vec<(String, bool)> = web
        .env_file
        .iter()
        .map(|f| (f.path.clone(), f.required))
        .collect();
    assert_eq!(
        files,
        vec![
            (s(loader_dir().join("example1.env")), true),
            (s(loader_dir().join("example2.env")), false),
        ]
    );
}

fn label_files() {
    // TestLoadWithLabelFile.
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: labels\nservices:\n  one:\n    image: nginx\n    label_file: ./example1.label\n  two:\n    image: nginx\n    label_file: [./example2.label]\n",
    )]);
    let loaded = load_ok(&inline(&p, loader_dir(), &[]));
    let labels = |name: &str| -> Vec<(String, String)> {
        service(&loaded, name)
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(
        labels("one"),
        pairs(&[
            ("BAR", "bar_from_label_file"),
            ("BAZ", "baz_from_label_file"),
            ("FOO", "foo_from_label_file"),
            ("LABEL.WITH.DOT", "ok"),
            ("LABEL_WITH_UNDERSCORE", "ok"),
        ])
    );
    assert_eq!(
        labels("two"),
        pairs(&[
            ("BAR", "bar_from_label_file_2"),
            ("QUX", "quz_from_label_file_2")
        ])
    );
    assert_eq!(
        service(&loaded, "one").label_file,
        vec![s(loader_dir().join("example1.label"))]
    );
}

fn with_version() {
    // TestComposeFileWithVersion.
    let loaded = load_ok(&options(
        &testdata(""),
        &["compose-test-with-version.yaml"],
        &[],
    ));
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.key == "version")
        .expect("a warning about `version`");
    assert!(warning.message.contains("obsolete"), "{warning}");
    assert_eq!(
        (warning.file.clone(), warning.line, warning.column),
        (testdata("compose-test-with-version.yaml"), 1, 1)
    );
    let web = service(&loaded, "web");
    let build = web.build.as_ref().unwrap();
    assert_eq!(build.context.as_deref(), Some(&*s(testdata("Dockerfile"))));
    let mut networks: Vec<&String> = web.networks.keys().collect();
    networks.sort();
    assert_eq!(networks, ["default", "front"]);
    assert!(web.networks.values().all(Option::is_none));
    assert_eq!(web.volumes_from, ["other"]);
    let other = service(&loaded, "other");
    assert_eq!(other.command.as_deref(), Some(&["top".to_string()][..]));
    assert_eq!(other.volumes.len(), 1);
    assert_eq!(other.volumes[0].kind, "volume");
    assert_eq!(other.volumes[0].target, "/data");
    assert_eq!(other.volumes[0].source, None);
    assert!(loaded.project.networks.contains_key("front"));
    let data = &loaded.project.volumes["data"];
    assert_eq!(data.driver.as_deref(), Some("local"));
}

fn extends_other_file() {
    // TestLoadWithExtends: empty loader environment, so the default is used.
    let loaded = load_ok(&options(&testdata(""), &["compose-test-extends.yaml"], &[]));
    let importer = service(&loaded, "importer");
    assert_eq!(importer.image.as_deref(), Some("nginx"));
    assert_eq!(importer.container_name.as_deref(), Some("imported"));
    assert_eq!(environment(importer), pairs(&[("SOURCE", "extends")]));
    assert_eq!(importer.env_file.len(), 1);
    assert_eq!(
        importer.env_file[0].path,
        s(testdata("subdir/extra.env")),
        "env_file is relative to the extended file's folder"
    );
    let v = &importer.volumes[0];
    assert_eq!(
        (v.kind.as_str(), v.source.as_deref(), v.target.as_str()),
        ("bind", Some("/opt/data"), "/var/lib/mysql")
    );
    assert_eq!(v.bind.as_ref().map(|b| b.create_host_path), Some(true));
    let networks: Vec<&String> = importer.networks.keys().collect();
    assert_eq!(networks, ["default"]);
}

fn extends_context_url() {
    // TestLoadWithExtendsWithContextUrl.
    let loaded = load_ok(&options(
        &testdata(""),
        &["compose-test-extends-with-context-url.yaml"],
        &[],
    ));
    let build = service(&loaded, "importer-with-https-url")
        .build
        .clone()
        .unwrap();
    assert_eq!(
        build.context.as_deref(),
        Some("https://github.com/docker/compose.git")
    );
    assert_eq!(build.dockerfile.as_deref(), Some("Dockerfile"));
}

fn empty_file() {
    // TestEmptyFile.
    let err = load_err(&options(&testdata(""), &["empty.yaml"], &[]));
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].message, "empty compose file");
    assert_eq!(err.0[0].file, testdata("empty.yaml"));
}

fn include_cycle() {
    // TestLoadWithIncludeCycle.
    let err = load_err(&options(
        &testdata(""),
        &["compose-include-cycle.yaml"],
        &[],
    ));
    let d = &err.0[0];
    assert!(d.message.starts_with("include cycle detected"), "{d}");
    assert_eq!(d.file, testdata("compose-include-cycle.yaml"));
    assert_eq!((d.line, d.column), (2, 5), "points at the include entry");
}

fn depends_on_cycle_case(file: &str, expected: &str) {
    let err = load_err(&options(&testdata(""), &[file], &[]));
    assert_eq!(err.0.len(), 1, "{}", show(&err));
    assert_eq!(err.0[0].message, expected);
    assert_eq!(err.0[0].file, testdata(file));
}

fn depends_on_cycle() {
    // TestLoadDependsOnCycle; points at service1's `- service2` entry.
    depends_on_cycle_case(
        "compose-depends-on-cycle.yaml",
        "dependency cycle detected: service1 -> service2 -> service3 -> service1",
    );
    let err = load_err(&options(
        &testdata(""),
        &["compose-depends-on-cycle.yaml"],
        &[],
    ));
    assert_eq!((err.0[0].line, err.0[0].column), (6, 9));
    assert_eq!(err.0[0].key, "services.service1.depends_on[0]");
}

fn depends_on_self() {
    // TestLoadDependsOnSelf.
    depends_on_cycle_case(
        "compose-depends-on-self.yaml",
        "dependency cycle detected: service1 -> service1",
    );
}

fn depends_on_profile_no_cycle() {
    // Not referenced by a test; its content is the cycle file's.
    depends_on_cycle_case(
        "compose-depends-on-profile-no-cycle.yaml",
        "dependency cycle detected: service1 -> service2 -> service3 -> service1",
    );
}

const MULTIPLE_INCLUDE: &str = "name: multi\ninclude:\n  - path: ./testdata/subdir/compose-test-extends-imported.yaml\n  - path: ./testdata/compose-include.yaml\n";

fn include_multiple() {
    // TestLoadWithMultipleInclude.
    let p = TempProject::new(&[(
        "compose.yaml",
        &format!("{MULTIPLE_INCLUDE}services:\n  foo:\n    image: foo\n"),
    )]);
    let loaded = load_ok(&inline(&p, loader_dir(), &[("SOURCE", "override")]));
    assert_eq!(
        service(&loaded, "imported").container_name.as_deref(),
        Some("override")
    );
    let bar = service(&loaded, "bar");
    assert_eq!(bar.image.as_deref(), Some("bar"));
    assert_eq!(environment(bar), pairs(&[("FOO", "BAR")]));
}

fn include_multiple_conflict_overridden() {
    // TestLoadWithMultipleIncludeConflict: the including file wins.
    let p = TempProject::new(&[(
        "compose.yaml",
        &format!(
            "{MULTIPLE_INCLUDE}services:\n  bar:\n    image: busybox\n    environment: !override\n      - ZOT=QIX\n"
        ),
    )]);
    let loaded = load_ok(&inline(&p, loader_dir(), &[("SOURCE", "override")]));
    let bar = service(&loaded, "bar");
    assert_eq!(bar.image.as_deref(), Some("busybox"));
    assert_eq!(environment(bar), pairs(&[("ZOT", "QIX")]));
}

const INCLUDE_WITH_ENV: &str = "name: inc\ninclude:\n  - path: ./testdata/subdir/compose-test-extends-imported.yaml\n    env_file: ./testdata/subdir/extra.env\n";

fn include_env_file() {
    // TestLoadWithInclude.
    let p = TempProject::new(&[(
        "compose.yaml",
        &format!("{INCLUDE_WITH_ENV}services:\n  foo:\n    image: foo\n"),
    )]);
    let loaded = load_ok(&inline(&p, loader_dir(), &[]));
    let imported = service(&loaded, "imported");
    assert_eq!(imported.container_name.as_deref(), Some("extends"));
    assert_eq!(
        imported.env_file[0].path,
        s(testdata("subdir/extra.env")),
        "relative to the included file"
    );
    // The caller's environment wins over the include's env_file.
    let loaded = load_ok(&inline(&p, loader_dir(), &[("SOURCE", "override")]));
    assert_eq!(
        service(&loaded, "imported").container_name.as_deref(),
        Some("override")
    );
}

fn include_then_override_file() {
    // TestLoadWithIncludeOverride.
    let p = TempProject::new(&[
        (
            "compose.yaml",
            &format!("{INCLUDE_WITH_ENV}services:\n  foo:\n    image: foo\n"),
        ),
        (
            "override.yaml",
            "services:\n  imported:\n    image: overridden\n",
        ),
    ]);
    let options = LoadOptions {
        project_directory: Some(loader_dir()),
        ..p.options(&["compose.yaml", "override.yaml"], &[])
    };
    let loaded = load_ok(&options);
    assert_eq!(
        service(&loaded, "imported").image.as_deref(),
        Some("overridden")
    );
}

fn include_relative() {
    // TestIncludeRelative (resolution off there: `.` means the include's folder).
    let loaded = load_ok(&options(&testdata("include"), &["compose.yaml"], &[]));
    let included = service(&loaded, "included");
    assert_eq!(
        included.build.as_ref().unwrap().context.as_deref(),
        Some(&*s(testdata("include")))
    );
    assert_eq!(
        included.volumes[0].source.as_deref(),
        Some(&*s(testdata("include")))
    );
}

fn include_project_directory() {
    // TestIncludeWithProjectDirectory.
    let loaded = load_ok(&options(
        &testdata("include"),
        &["project-directory.yaml"],
        &[],
    ));
    let svc = service(&loaded, "service");
    assert_eq!(
        svc.build.as_ref().unwrap().context.as_deref(),
        Some(&*s(testdata("subdir")))
    );
    assert_eq!(
        svc.volumes[0].source.as_deref(),
        Some(&*s(testdata("subdir/compose-test-extends-imported.yaml")))
    );
    assert_eq!(svc.env_file[0].path, s(testdata("subdir/extra.env")));
}

fn include_extends_combined() {
    // TestLoadIncludeExtendsCombined.
    let options = LoadOptions {
        project_name: Some("test-load-combined".into()),
        ..options(&testdata("combined"), &["compose.yaml"], &[])
    };
    let loaded = load_ok(&options);
    assert_eq!(loaded.project.name, "test-load-combined");
    assert_eq!(
        service(&loaded, "service")
            .build
            .as_ref()
            .unwrap()
            .context
            .as_deref(),
        Some(&*s(testdata("combined/dir")))
    );
}

fn extends_inline(body: &str) -> (TempProject, LoadOptions) {
    let p = TempProject::new(&[("compose.yaml", body)]);
    let options = inline(&p, loader_dir(), &[]);
    (p, options)
}

fn extends_base() {
    // TestExtends (the listener count is not observable here).
    let (_p, options) = extends_inline(
        "name: test-extends\nservices:\n  test1:\n    extends:\n      file: testdata/extends/base.yaml\n      service: base\n    hostname: test1\n  test2:\n    extends:\n      file: testdata/extends/base.yaml\n      service: base\n    hostname: test2\n  test3:\n    extends:\n      file: testdata/extends/base.yaml\n      service: another\n    hostname: test3\n",
    );
    let loaded = load_ok(&options);
    for name in ["test1", "test2", "test3"] {
        let svc = service(&loaded, name);
        assert_eq!(svc.hostname.as_deref(), Some(name));
        assert_eq!(svc.image.as_deref(), Some("base"));
    }
}

fn extends_nil() {
    // TestExtendsNil: the empty service `nil` beside the one extended.
    let (_p, options) = extends_inline(
        "name: test-extends\nservices:\n  test:\n    image: test\n    extends:\n      file: testdata/extends/base.yaml\n      service: nil\n",
    );
    let loaded = load_ok(&options);
    assert_eq!(service(&loaded, "test").image.as_deref(), Some("test"));
}

fn extends_port() {
    // TestExtendsPort.
    let (_p, options) = extends_inline(
        "name: test-extends-port\nservices:\n  test:\n    image: test\n    extends:\n      file: testdata/extends/base.yaml\n      service: with-port\n",
    );
    let loaded = load_ok(&options);
    assert_eq!(service(&loaded, "test").ports[0].target, 8000);
}

fn extends_ulimits() {
    // TestExtendsUlimits.
    let (_p, options) = extends_inline(
        "name: test-extends\nservices:\n  test:\n    extends:\n      file: testdata/extends/base.yaml\n      service: withUlimits\n",
    );
    let loaded = load_ok(&options);
    let json = serde_json::to_value(service(&loaded, "test")).unwrap();
    assert_eq!(json["ulimits"]["nproc"], 65535);
    assert_eq!(json["ulimits"]["nofile"]["soft"], 20000);
}

fn extends_relative_path() {
    // TestExtendsRelativePath: `build: .` in sibling.yaml, via base.yaml.
    let (_p, options) = extends_inline(
        "name: test-extends-port\nservices:\n  test:\n    extends:\n      file: testdata/extends/base.yaml\n      service: with-build\n",
    );
    let loaded = load_ok(&options);
    assert_eq!(
        service(&loaded, "test")
            .build
            .as_ref()
            .unwrap()
            .context
            .as_deref(),
        Some(&*s(testdata("extends")))
    );
}

fn extends_missing_service_key() {
    // TestExtendsWihtMissingService: `extends.test.service is required`.
    let (p, options) = extends_inline(
        "name: test-extends\nservices:\n  test:\n    image: test\n    extends:\n      file: testdata/extends/base.yaml\n",
    );
    let err = load_err(&options);
    let d = &err.0[0];
    assert_eq!(d.key, "services.test.extends");
    assert!(d.message.contains("\"service\""), "{d}");
    // At the `extends:` key, the mapping that lacks `service`.
    assert_eq!((d.file.clone(), d.line), (p.path("compose.yaml"), 5));
}

fn extends_nested_include() {
    // TestIncludeWithExtends.
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: nested\ninclude:\n  - testdata/extends/nested.yaml\n",
    )]);
    let loaded = load_ok(&inline(&p, loader_dir(), &[]));
    let build = service(&loaded, "with-build").build.clone().unwrap();
    assert_eq!(build.context.as_deref(), Some(&*s(testdata("extends"))));
}

fn extends_port_override() {
    // TestExtendsPortOverride.
    let (_p, options) = extends_inline(
        "name: ports\nservices:\n  test:\n    extends:\n      file: testdata/extends/ports.yaml\n      service: test\n    ports:\n      - 8080:8080\n",
    );
    let loaded = load_ok(&options);
    let ports = &service(&loaded, "test").ports;
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0].published.as_deref(), Some("8080"));
}

fn extends_service_refs() {
    // TestExtendsWithServiceRef.
    for base in [
        "with_depends_on",
        "with_volumes_from",
        "with_ipc",
        "with_network_mode",
    ] {
        let (_p, options) = extends_inline(&format!(
            "name: refs\nservices:\n  bar:\n    extends:\n      file: testdata/extends/depends_on.yaml\n      service: {base}\n"
        ));
        let err = load_err(&options);
        assert!(
            err.0
                .iter()
                .any(|d| d.message == "service \"bar\" depends on undefined service \"zot\""),
            "{base}: {}",
            show(&err)
        );
    }
}

fn extends_reset() {
    // TestExtendsReset.
    let loaded = load_ok(&options(&testdata("extends"), &["reset.yaml"], &[]));
    assert_eq!(service(&loaded, "base").command, None);
    assert_eq!(
        service(&loaded, "init").command.as_deref(),
        Some(&["sleep".to_string(), "infinity".to_string()][..])
    );
}

fn extends_interpolated() {
    // TestExtendsWithInterpolation.
    let (_p, options) = extends_inline(
        "name: interp\nservices:\n  foo:\n    extends:\n      file: testdata/extends/interpolated.yaml\n      service: foo\n",
    );
    let loaded = load_ok(&options);
    assert_eq!(
        service(&loaded, "foo").volumes[0].source.as_deref(),
        Some("/dev/null")
    );
}

fn extends_withdir() {
    // Extends across folders, two levels.
    let loaded = load_ok(&options(
        &testdata("extends/withdir"),
        &["compose.yaml"],
        &[],
    ));
    assert_eq!(
        service(&loaded, "test").image.as_deref(),
        Some("hello-world")
    );
}

fn remote_local_equivalent() {
    // TestLoadWithRemoteResources without the custom `remote:` loader (see
    // exceptions): the same files extended by path.
    let (_p, options) = extends_inline(
        "name: remote\nservices:\n  test:\n    extends:\n      file: testdata/remote/compose.yaml\n      service: foo\n",
    );
    let loaded = load_ok(&options);
    let test = service(&loaded, "test");
    assert_eq!(test.image.as_deref(), Some("foo"));
    assert_eq!(environment(test), pairs(&[("FOO", "BAR")]));
    assert_eq!(test.env_file[0].path, s(testdata("remote/env")));
    assert_eq!(
        test.volumes[0].source.as_deref(),
        Some(&*s(testdata("remote")))
    );
}

fn remote_scheme_is_a_missing_file() {
    // `remote:…` names no local file: the error names it.
    let err = load_err(&options(&testdata("remote/nested"), &["compose.yaml"], &[]));
    let d = &err.0[0];
    assert!(d.message.starts_with("cannot read file"), "{d}");
    assert!(
        d.file
            .to_string_lossy()
            .ends_with("remote:nested/compose-nested.yaml"),
        "{d}"
    );
}

fn extends_cycle_across_files() {
    // TestLoadWithResourcesCycle, with local paths.
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "services:\n  foo:\n    extends:\n      file: cycle.yaml\n      service: bar\n",
        ),
        (
            "cycle.yaml",
            "services:\n  bar:\n    extends:\n      file: compose.yaml\n      service: foo\n",
        ),
    ]);
    let err = load_err(&p.options(&["compose.yaml"], &[]));
    let d = &err.0[0];
    assert_eq!(
        d.message,
        "circular reference in extends: foo -> bar (cycle.yaml) -> foo"
    );
}

const LOADER_CASES: &[Case] = &[
    ("example1.env + example2.env", env_files_example1_example2),
    ("example1.label, example2.label", label_files),
    ("compose-test-with-version.yaml", with_version),
    ("compose-test-extends.yaml", extends_other_file),
    (
        "compose-test-extends-with-context-url.yaml",
        extends_context_url,
    ),
    ("empty.yaml", empty_file),
    ("compose-include-cycle.yaml", include_cycle),
    ("compose-depends-on-cycle.yaml", depends_on_cycle),
    ("compose-depends-on-self.yaml", depends_on_self),
    (
        "compose-depends-on-profile-no-cycle.yaml",
        depends_on_profile_no_cycle,
    ),
    ("compose-include.yaml (multiple)", include_multiple),
    (
        "compose-include.yaml (conflict, !override)",
        include_multiple_conflict_overridden,
    ),
    ("include with env_file", include_env_file),
    ("include then override file", include_then_override_file),
    ("include/compose.yaml", include_relative),
    ("include/project-directory.yaml", include_project_directory),
    ("combined/**", include_extends_combined),
    ("extends/base.yaml", extends_base),
    ("extends/base.yaml nil", extends_nil),
    ("extends/base.yaml with-port", extends_port),
    ("extends/base.yaml withUlimits", extends_ulimits),
    ("extends/base.yaml with-build", extends_relative_path),
    (
        "extends/base.yaml missing service",
        extends_missing_service_key,
    ),
    ("extends/nested.yaml", extends_nested_include),
    ("extends/ports.yaml", extends_port_override),
    ("extends/depends_on.yaml", extends_service_refs),
    ("extends/reset.yaml", extends_reset),
    ("extends/interpolated.yaml", extends_interpolated),
    ("extends/withdir/**", extends_withdir),
    ("remote/** (local paths)", remote_local_equivalent),
    (
        "remote/** (remote: scheme)",
        remote_scheme_is_a_missing_file,
    ),
    ("remote/cycle (local paths)", extends_cycle_across_files),
];

#[test]
fn compose_go_loader_fixtures() {
    run_cases("compose-go loader fixtures", LOADER_CASES);
}
