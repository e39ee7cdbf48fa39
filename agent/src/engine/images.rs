//! [`ImageSource`] over the local [`Store`]. berth has no registry client
//! and no builder yet: `pull` and `build` fail with `Unavailable` and say
//! how to get an image in, rather than pretend.

use berth_image::Store;
use berth_reconcilers::BackendError;
use berth_reconcilers::ImageSource;
use berth_reconcilers::container::BuildRequest;

use super::error::from_image;

pub struct Images {
    store: Store,
}

impl Images {
    pub fn new(store: Store) -> Self {
        Images { store }
    }
}

impl ImageSource for Images {
    /// The image ID (`sha256:` + the config digest): what `berth images`
    /// shows and what containers record in `berth.image-id`, so a digest
    /// label and a local image compare directly.
    fn resolve(&self, reference: &str) -> Result<Option<String>, BackendError> {
        match self.store.image(reference) {
            Ok(image) => Ok(Some(image.id.to_string())),
            Err(e) if e.kind() == berth_image::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(from_image(e)),
        }
    }

    fn pull(&self, reference: &str) -> Result<String, BackendError> {
        Err(BackendError::unavailable(format!(
            "cannot pull {reference}: registry pull is not implemented yet; \
             import or load the image (`berth load -i ARCHIVE`, `berth image import ROOTFS.tar {reference}`)"
        )))
    }

    fn build(&self, request: &BuildRequest) -> Result<String, BackendError> {
        Err(BackendError::unavailable(format!(
            "cannot build {} for service {}: builds are not implemented yet; \
             build it elsewhere and load it (`berth load -i ARCHIVE`)",
            request.reference, request.service
        )))
    }
}
