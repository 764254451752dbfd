//! Each batch's scratch directory: fresh, under `[run] scratch-root`,
//! exported as `TMPDIR` and `WARDEN_SCRATCH`, removed after the batch
//! unless `keep-scratch` says to keep it (then named in the report).

use std::path::{Path, PathBuf};

use crate::config::KeepScratch;
use crate::outcome::Outcome;
use crate::plan::Scratch;

pub struct ScratchDir {
    dir: tempfile::TempDir,
}

impl ScratchDir {
    /// A new empty directory `warden-XXXXXX` under the root (short: unix
    /// socket paths under it must fit 108 bytes).
    pub fn create(scratch: &Scratch) -> std::io::Result<ScratchDir> {
        std::fs::create_dir_all(&scratch.root)?;
        let dir = tempfile::Builder::new()
            .prefix("warden-")
            .tempdir_in(&scratch.root)?;
        Ok(ScratchDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Removes the directory or keeps it, as `keep` says for this outcome;
    /// what happened goes into the outcome's warnings when it matters.
    /// Called after the batch's processes are gone.
    pub fn finish(self, keep: KeepScratch, outcome: &mut Outcome) {
        let kept = match keep {
            KeepScratch::Never => false,
            KeepScratch::OnFailure => !outcome.status.is_success(),
            KeepScratch::Always => true,
        };
        if kept {
            let path: PathBuf = self.dir.keep();
            outcome
                .warnings
                .push(format!("scratch directory kept: {}", path.display()));
            return;
        }
        let path = self.dir.path().to_owned();
        if let Err(e) = self.dir.close() {
            outcome.warnings.push(format!(
                "cannot remove scratch directory {}: {e}",
                path.display()
            ));
        }
    }
}
