//! The host platform, and choosing its manifest from an image index.

use oci_spec::image::{Descriptor, MediaType};

/// The host's architecture in GOARCH spelling (`amd64`, `arm64`, ...), as
/// image configs and indexes name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The host's OS in GOOS spelling; berth only runs Linux containers.
pub const HOST_OS: &str = "linux";

/// `linux/amd64`, for messages.
pub fn host_platform() -> String {
    format!("{HOST_OS}/{}", host_arch())
}

/// Whether a descriptor is an image index (OCI or Docker manifest list).
pub(crate) fn is_index(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageIndex => true,
        MediaType::Other(s) => s == "application/vnd.docker.distribution.manifest.list.v2+json",
        _ => false,
    }
}

/// Whether a descriptor is an image manifest (OCI or Docker schema 2).
pub(crate) fn is_manifest(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageManifest => true,
        MediaType::Other(s) => s == "application/vnd.docker.distribution.manifest.v2+json",
        _ => false,
    }
}

/// Picks the host's entry among an index's manifests: an exact
/// `linux/<arch>` match first; else, when exactly one image entry has no
/// platform at all, that one. Attestation manifests (`unknown/unknown`)
/// never match.
pub(crate) fn select(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let arch = host_arch();
    let exact = manifests.iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == HOST_OS && p.architecture().to_string() == arch)
    });
    if exact.is_some() {
        return exact;
    }
    let mut unplatformed = manifests.iter().filter(|d| {
        d.platform().is_none() && (is_manifest(d.media_type()) || is_index(d.media_type()))
    });
    match (unplatformed.next(), unplatformed.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Arch, Os, PlatformBuilder};

    fn desc(arch: Option<Arch>) -> Descriptor {
        let mut d = Descriptor::new(
            MediaType::ImageManifest,
            1,
            crate::digest::Digest::of(format!("{arch:?}").as_bytes())
                .to_oci()
                .unwrap(),
        );
        if let Some(arch) = arch {
            d.set_platform(Some(
                PlatformBuilder::default()
                    .os(Os::Linux)
                    .architecture(arch)
                    .build()
                    .unwrap(),
            ));
        }
        d
    }

    #[test]
    fn picks_the_host_arch() {
        let host = Arch::from(host_arch());
        let other = if host_arch() == "amd64" {
            Arch::ARM64
        } else {
            Arch::Amd64
        };
        let list = [desc(Some(other.clone())), desc(Some(host.clone()))];
        assert_eq!(select(&list), Some(&list[1]));
        assert_eq!(select(&[desc(Some(other.clone()))]), None);
        let bare = [desc(None)];
        assert_eq!(select(&bare), Some(&bare[0]));
        assert_eq!(select(&[desc(None), desc(None)]), None);
    }
}
