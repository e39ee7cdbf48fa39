//! Layer and archive compression: [`Compression`] detected from the first
//! bytes (not trusted from file names or media types), and a decompressing
//! reader over any stream.

use std::io::{self, BufRead, BufReader, Read};

use oci_spec::image::MediaType;

/// How a layer or archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// Detects the compression from a stream's first bytes.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for a layer compressed this way.
    pub fn layer_media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }

    /// The compression a layer media type declares, OCI or Docker; `None`
    /// for types that are not layers.
    pub fn from_layer_media_type(media_type: &MediaType) -> Option<Self> {
        match media_type {
            MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => {
                Some(Compression::None)
            }
            MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => {
                Some(Compression::Gzip)
            }
            MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => {
                Some(Compression::Zstd)
            }
            MediaType::Other(s) => match s.as_str() {
                "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                    Some(Compression::Gzip)
                }
                "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Compression::Zstd),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Wraps `reader` in a decompressor chosen from its first bytes. The bytes
/// peeked at are not lost: detection looks into a `BufReader`'s buffer.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let compression = Compression::detect(buffered.fill_buf()?);
    let out: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(buffered),
        // MultiGzDecoder: `cat a.gz b.gz` is a valid gzip stream, and some
        // tools write layers that way.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => zstd_reader(buffered)?,
    };
    Ok((compression, out))
}

#[cfg(feature = "zstd")]
fn zstd_reader<'a, R: BufRead + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
}

#[cfg(not(feature = "zstd"))]
fn zstd_reader<'a, R: BufRead + 'a>(_reader: R) -> io::Result<Box<dyn Read + 'a>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "zstd-compressed content needs berth-image's `zstd` feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_and_decompresses() {
        let plain = b"hello layer".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        for (input, expected) in [
            (plain.clone(), Compression::None),
            (gz, Compression::Gzip),
            #[cfg(feature = "zstd")]
            (zstd::encode_all(&plain[..], 1).unwrap(), Compression::Zstd),
        ] {
            let (c, mut r) = decompress(&input[..]).unwrap();
            assert_eq!(c, expected);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn media_types_round_trip() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(
                Compression::from_layer_media_type(&c.layer_media_type()),
                Some(c)
            );
        }
        let docker = MediaType::from("application/vnd.docker.image.rootfs.diff.tar.gzip");
        assert_eq!(
            Compression::from_layer_media_type(&docker),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_layer_media_type(&MediaType::ImageConfig),
            None
        );
    }
}
