//! `COPY --link` / `ADD --link`, as BuildKit defines them: the files are
//! copied onto an empty directory (never through the stage's rootfs, so
//! no symlink of the parent is followed and the destination's parents
//! are directories of the new layer), and the layer's cache key holds the
//! instruction, its flags, the destination and what it reads, not the
//! parent's key. When the base changes the layer comes from the cache,
//! the same blob, and is stacked on the new base.
//!
//! `--chown` with names is resolved in the parent's `/etc/passwd` and
//! `/etc/group` (BuildKit refuses names other than root with `--link`);
//! the key holds the numeric IDs it resolved to, so the layer is reused as
//! long as the names mean the same IDs.

use super::*;

/// The owner a linked layer's files get: `None` without `--chown`.
pub(super) type LinkOwner = Option<(u32, u32)>;

impl StageRun<'_> {
    /// `Some` for a `--link` step, with its resolved `--chown`.
    pub(super) fn link_owner(
        &self,
        instruction: &Instruction,
    ) -> std::result::Result<Option<LinkOwner>, String> {
        let chown = match instruction {
            Instruction::Copy(c) if c.link => c.chown.as_deref(),
            Instruction::Add(a) if a.link => a.chown.as_deref(),
            _ => return Ok(None),
        };
        let Some(spec) = chown else {
            return Ok(Some(None));
        };
        if spec.split(':').all(|part| part.parse::<u32>().is_ok()) {
            // Numeric IDs need no passwd file.
            return copy::resolve_chown(spec, std::path::Path::new("/nonexistent"))
                .map(|ids| Some(Some(ids)));
        }
        let lowers = self.lowers().map_err(|e| e.to_string())?;
        let view = OverlayView::mount(&self.shared.tmp, &lowers).map_err(|e| e.to_string())?;
        let ids = copy::resolve_chown(spec, &view.root())
            .map_err(|e| format!("--link --chown={spec}: {e}"))?;
        view.finish().map_err(|e| e.to_string())?;
        Ok(Some(Some(ids)))
    }

    /// A linked step as its key sees it: the instruction, where it
    /// writes (the working dir only through the destination), the owner
    /// it resolved to.
    pub(super) fn describe_link(&self, instruction: &Instruction, owner: LinkOwner) -> String {
        let mut what = serde_json::to_string(instruction).unwrap_or_default();
        let (dest, expands) = match instruction {
            Instruction::Copy(c) => (c.dest.as_str(), &c.inline_sources),
            Instruction::Add(a) => (a.dest.as_str(), &a.inline_sources),
            _ => ("", &Vec::new()),
        };
        let (dest, _) = copy::dest_path(dest, &self.state.workdir());
        what.push_str(&format!("|link|dest={dest}"));
        if let Some((uid, gid)) = owner {
            what.push_str(&format!("|owner={uid}:{gid}"));
        }
        if expands.iter().any(|s| s.expand) {
            // A heredoc's variables are expanded when it is written.
            what.push_str(&format!("|env={:?}|args={:?}", self.state.env(), self.args));
        }
        if let Some(e) = self.shared.epoch {
            what.push_str(&format!("|epoch={e}"));
        }
        what
    }
}
