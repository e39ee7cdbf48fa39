//! Short-syntax parsers, value by value: ports (docker/go-connections
//! `nat.ParsePortSpec` and compose-go cases) and volumes (compose-go
//! `format/volume_test.go`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_spec::compose::model::{ServicePort, ServiceVolume, parse_port_spec, parse_volume_spec};

/// (host_ip, published, target, protocol) per expanded entry.
type P = (
    Option<&'static str>,
    Option<&'static str>,
    u32,
    &'static str,
);

fn ports(spec: &str) -> Vec<P> {
    parse_port_spec(spec)
        .unwrap_or_else(|e| panic!("{spec}: {e:?}"))
        .into_iter()
        .map(|p: ServicePort| {
            assert_eq!(p.mode, "ingress");
            (
                p.host_ip.map(|s| &*s.leak()),
                p.published.map(|s| &*s.leak()),
                p.target,
                &*p.protocol.leak(),
            )
        })
        .collect()
}

#[test]
fn port_short_syntax_table() {
    let cases: Vec<(&str, Vec<P>)> = vec![
        ("80", vec![(None, None, 80, "tcp")]),
        ("80/udp", vec![(None, None, 80, "udp")]),
        ("80/sctp", vec![(None, None, 80, "sctp")]),
        ("80/TCP", vec![(None, None, 80, "tcp")]),
        ("80/", vec![(None, None, 80, "tcp")]),
        ("8080:80", vec![(None, Some("8080"), 80, "tcp")]),
        ("8080:80/udp", vec![(None, Some("8080"), 80, "udp")]),
        ("49100:22", vec![(None, Some("49100"), 22, "tcp")]),
        (":80", vec![(None, None, 80, "tcp")]),
        (
            "127.0.0.1:8001:8001",
            vec![(Some("127.0.0.1"), Some("8001"), 8001, "tcp")],
        ),
        (
            "127.0.0.1:53:53/udp",
            vec![(Some("127.0.0.1"), Some("53"), 53, "udp")],
        ),
        ("127.0.0.1::80", vec![(Some("127.0.0.1"), None, 80, "tcp")]),
        (
            "0.0.0.0:80:80",
            vec![(Some("0.0.0.0"), Some("80"), 80, "tcp")],
        ),
        (
            "[::1]:8080:80",
            vec![(Some("::1"), Some("8080"), 80, "tcp")],
        ),
        ("[::]:80:80/udp", vec![(Some("::"), Some("80"), 80, "udp")]),
        ("::1:8080:80", vec![(Some("::1"), Some("8080"), 80, "tcp")]),
        (
            "[2001:db8::1]::80",
            vec![(Some("2001:db8::1"), None, 80, "tcp")],
        ),
        ("0", vec![(None, None, 0, "tcp")]),
        ("65535:65535", vec![(None, Some("65535"), 65535, "tcp")]),
        (
            "3000-3002",
            vec![
                (None, None, 3000, "tcp"),
                (None, None, 3001, "tcp"),
                (None, None, 3002, "tcp"),
            ],
        ),
        (
            "9090-9091:8080-8081",
            vec![
                (None, Some("9090"), 8080, "tcp"),
                (None, Some("9091"), 8081, "tcp"),
            ],
        ),
        (
            "127.0.0.1:5000-5001:5000-5001/udp",
            vec![
                (Some("127.0.0.1"), Some("5000"), 5000, "udp"),
                (Some("127.0.0.1"), Some("5001"), 5001, "udp"),
            ],
        ),
        // A host range behind a single container port: dynamic allocation.
        ("8000-8010:80", vec![(None, Some("8000-8010"), 80, "tcp")]),
        ("80-80:80", vec![(None, Some("80"), 80, "tcp")]),
        // compose-go sorts expanded ports as "port/proto" strings.
        (
            "9998-10001:9998-10001",
            vec![
                (None, Some("10000"), 10000, "tcp"),
                (None, Some("10001"), 10001, "tcp"),
                (None, Some("9998"), 9998, "tcp"),
                (None, Some("9999"), 9999, "tcp"),
            ],
        ),
    ];
    for (spec, want) in &cases {
        assert_eq!(&ports(spec), want, "{spec}");
    }
    println!("ports: {} valid short-syntax cases", cases.len());
}

#[test]
fn port_short_syntax_errors() {
    for (spec, needle) in [
        ("", "no container port"),
        ("80800", "invalid container port"),
        ("abc", "invalid container port"),
        ("8080:abc", "invalid container port"),
        ("abc:80", "invalid host port"),
        ("127.0.0.1:80", "invalid host port"),
        ("80-70", "invalid container port"),
        ("8000-8001:80-82", "differ in length"),
        ("80/ftp", "invalid protocol"),
        ("1.2.3:80:80", "invalid IP address"),
        ("localhost:80:80", "invalid IP address"),
        ("[::1:80:80", "invalid IP address"),
        ("-1", "invalid container port"),
    ] {
        let err = parse_port_spec(spec).expect_err(spec);
        assert!(err.message.contains(needle), "{spec}: {}", err.message);
        assert!(err.hint.is_some(), "{spec}: no hint");
    }
}

/// (type, source, target, read_only, create_host_path, selinux,
/// propagation, nocopy): the fields the short syntax can set.
type V = (
    String,
    Option<String>,
    String,
    bool,
    Option<bool>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

fn vol(spec: &str) -> V {
    let v: ServiceVolume = parse_volume_spec(spec).unwrap_or_else(|e| panic!("{spec}: {e:?}"));
    (
        v.kind,
        v.source,
        v.target,
        v.read_only,
        v.bind.as_ref().map(|b| b.create_host_path),
        v.bind.as_ref().and_then(|b| b.selinux.clone()),
        v.bind.as_ref().and_then(|b| b.propagation.clone()),
        v.volume.as_ref().map(|o| o.nocopy),
    )
}

#[test]
fn volume_short_syntax_table() {
    let s = |x: &str| Some(x.to_string());
    let t = |x: &str| x.to_string();
    // Anonymous volumes.
    for p in ["/path", "/path/foo", "C:\\path", "Z:\\path\\foo"] {
        assert_eq!(
            vol(p),
            (
                t("volume"),
                None,
                t(p),
                false,
                None,
                None,
                None,
                Some(false)
            ),
            "{p}"
        );
    }
    // One or two characters: a target, nothing else (compose-go quirk kept).
    for p in [".", "/a"] {
        assert_eq!(
            vol(p),
            (t("volume"), None, t(p), false, None, None, None, None),
            "{p}"
        );
    }
    // Bind mounts: the source looks like a path.
    for p in ["./foo", "~/thing", "../other", "/foo", "/home/user", "."] {
        assert_eq!(
            vol(&format!("{p}:/target")),
            (
                t("bind"),
                s(p),
                t("/target"),
                false,
                Some(true),
                None,
                None,
                None
            ),
            "{p}"
        );
    }
    for p in ["./foo", "~/thing", "../other", "D:\\path", "/home/user"] {
        assert_eq!(
            vol(&format!("{p}:d:\\target")),
            (
                t("bind"),
                s(p),
                t("d:\\target"),
                false,
                Some(true),
                None,
                None,
                None
            ),
            "{p}"
        );
    }
    assert_eq!(
        vol("/source:/target:slave"),
        (
            t("bind"),
            s("/source"),
            t("/target"),
            false,
            Some(true),
            None,
            s("slave"),
            None
        )
    );
    assert_eq!(
        vol("/source:/target:ro,z"),
        (
            t("bind"),
            s("/source"),
            t("/target"),
            true,
            Some(true),
            s("z"),
            None,
            None
        )
    );
    assert_eq!(
        vol("/source:/target:ro,Z"),
        (
            t("bind"),
            s("/source"),
            t("/target"),
            true,
            Some(true),
            s("Z"),
            None,
            None
        )
    );
    assert_eq!(
        vol("C:\\source\\foo:D:\\target:ro,rprivate"),
        (
            t("bind"),
            s("C:\\source\\foo"),
            t("D:\\target"),
            true,
            Some(true),
            None,
            s("rprivate"),
            None
        )
    );
    assert_eq!(
        vol("./foo:/target:rw"),
        (
            t("bind"),
            s("./foo"),
            t("/target"),
            false,
            Some(true),
            None,
            None,
            None
        )
    );
    assert_eq!(
        vol("~/configs:/etc/configs:ro"),
        (
            t("bind"),
            s("~/configs"),
            t("/etc/configs"),
            true,
            Some(true),
            None,
            None,
            None
        )
    );
    assert_eq!(
        vol("\\\\.\\pipe\\docker_engine:\\\\.\\pipe\\inside"),
        (
            t("bind"),
            s("\\\\.\\pipe\\docker_engine"),
            t("\\\\.\\pipe\\inside"),
            false,
            Some(true),
            None,
            None,
            None
        )
    );
    // Named volumes.
    assert_eq!(
        vol("datavolume:/var/lib/volume"),
        (
            t("volume"),
            s("datavolume"),
            t("/var/lib/volume"),
            false,
            None,
            None,
            None,
            Some(false)
        )
    );
    assert_eq!(
        vol("name:/target:nocopy"),
        (
            t("volume"),
            s("name"),
            t("/target"),
            false,
            None,
            None,
            None,
            Some(true)
        )
    );
    assert_eq!(
        vol("name:/target:ro"),
        (
            t("volume"),
            s("name"),
            t("/target"),
            true,
            None,
            None,
            None,
            Some(false)
        )
    );
    // Unknown options are ignored, like compose-go.
    assert_eq!(vol("name:/target:bogus").0, "volume");
    assert_eq!(vol("./a:/b:cached").0, "bind");
    assert!(!vol("a界:/x").0.is_empty());
    assert_eq!(vol("a界:/x").0, "volume");
    // Split cases from compose-go's TestParseVolumeSplitCases: does the spec
    // have a source?
    for (spec, has_source) in [
        ("C:\\foo:d:", true),
        ("/foo:/bar:ro", true),
        ("C:\\foo\\:/foo", true),
        ("d:\\", false),
        ("d:", false),
        ("d:\\path", false),
        ("d:\\path with space", false),
        ("d:\\pathandmode:rw", true),
        ("c:\\:d:\\", true),
        ("c:\\windows:d:\\s p a c e:RW", true),
        ("0123456789name:d:", true),
        ("name:D::rW", true),
        ("c:/:d:/forward/slashes/are/good/too", true),
        ("c:\\Program Files (x86)", false),
        (".", false),
        ("..\\", false),
        ("c:\\:..\\", true),
        ("c:\\:d:\\:xyzzy", true),
        ("/tmp/x/y:/foo/x/y", true),
    ] {
        let v = parse_volume_spec(spec).unwrap_or_else(|e| panic!("{spec}: {e:?}"));
        assert_eq!(v.source.is_some(), has_source, "{spec}");
    }
}

#[test]
fn volume_short_syntax_errors() {
    for (spec, needle) in [
        ("", "invalid empty volume spec"),
        (":foo", "empty section between colons"),
        ("/foo::ro", "empty section between colons"),
        ("/foo:/foo:ro:foo", "too many colons"),
        (":C:\\foo:d:", "empty section"),
    ] {
        let err = parse_volume_spec(spec).expect_err(spec);
        assert!(err.message.contains(needle), "{spec}: {}", err.message);
    }
}
