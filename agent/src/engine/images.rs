//! [`ImageSource`] over the local [`Store`]. berth has no registry client
//! yet: `pull` fails with `Unavailable` and says how to get an image in,
//! rather than pretend. `build` runs berth's builder on the service's
//! `build:` section (see `build_request` and `build_output`).

use std::sync::Arc;

use berth_image::Store;
use berth_reconcilers::BackendError;
use berth_reconcilers::ImageSource;
use berth_reconcilers::container::BuildRequest;
use berth_runtime::Runtime;

use super::build_inputs::BuildInputs;
use super::build_output::BuildOutput;
use super::error::from_image;

pub struct Images {
    store: Store,
    runtime: Runtime,
    build_output: Arc<dyn BuildOutput>,
    build_inputs: BuildInputs,
}

impl Images {
    pub fn new(store: Store, runtime: Runtime) -> Self {
        Images {
            build_inputs: BuildInputs::new(store.root()),
            store,
            runtime,
            build_output: Arc::new(super::build_output::Log),
        }
    }

    /// Where builds report their steps: the log (the agent) unless a
    /// CLI verb shows them.
    pub fn set_build_output(&mut self, output: Arc<dyn BuildOutput>) {
        self.build_output = output;
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
        if request.build.pull {
            // `build.pull` / `build --pull`: the bases are refreshed from
            // their registry first.
            let env = |k: &str| std::env::var(k).ok();
            let build = super::build_request::translate(request, &env)?;
            for base in super::build_request::base_images(&build)? {
                self.pull(&base).map_err(|e| {
                    BackendError::new(
                        e.kind(),
                        format!(
                            "service {:?}: build.pull: cannot pull the base image {base}: {}",
                            request.service, e.message
                        ),
                    )
                })?;
            }
        }
        super::build_output::run_build(
            &self.store,
            &self.runtime,
            self.build_output.as_ref(),
            &self.build_inputs,
            request,
        )
    }

    fn build_stale(&self, request: &BuildRequest) -> Result<Option<String>, BackendError> {
        let Some(image_id) = self.resolve(&request.reference)? else {
            return Ok(None);
        };
        let env = |k: &str| std::env::var(k).ok();
        let build = super::build_request::translate(request, &env)?;
        let inputs = self.build_inputs.digest(&build)?;
        Ok(self
            .build_inputs
            .stale(&request.reference, &image_id, &inputs))
    }
}
