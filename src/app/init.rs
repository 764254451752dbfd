//! `warden init`: looks at the directory (`starter::detect`), says what it
//! found, and writes the commented starter `warden.toml`
//! (`starter::render`). An existing file is never replaced without
//! `--force`: without it the file is created exclusively, so a config
//! written meanwhile is not lost either.

use std::io::Write as _;

use anyhow::Context;

use super::exit::EXIT_PASSED;
use crate::cli::InitArgs;
use crate::starter::{self, Options};

pub(super) fn init(args: InitArgs) -> anyhow::Result<u8> {
    let path = args.dir.join("warden.toml");
    if path.exists() && !args.force {
        anyhow::bail!(
            "{} already exists: `warden init --force` replaces it",
            path.display()
        );
    }
    let options = Options {
        selftests: args.selftests,
        nextest_installed: starter::nextest_on_path(),
    };
    let found = starter::detect(&args.dir, &options)?;
    if found.projects.is_empty() {
        out!(
            "found no Cargo.toml, go.mod, pytest project or tools/testing/selftests in {}: \
             a generic config, its batch to be filled in",
            args.dir.display()
        );
    }
    for p in &found.projects {
        out!("found {}", p.describe());
    }
    let text = starter::render(&found);
    if args.force {
        crate::atomic_write::write_atomically(&path, |w| w.write_all(text.as_bytes()))
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
    }
    .with_context(|| format!("cannot write {}", path.display()))?;
    out!(
        "wrote {}: `warden check` shows the plan, `warden run` runs it",
        path.display()
    );
    out!("(warden-artifacts/ and .warden/ are what runs write: worth a line in .gitignore)");
    Ok(EXIT_PASSED)
}
