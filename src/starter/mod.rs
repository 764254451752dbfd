//! `warden init`'s starter configs: what a project directory holds
//! (`detect`: a Cargo package or workspace, a Go module, a pytest project,
//! a kernel tree's selftests) and the commented `warden.toml` for it
//! (`template`). A new user's first config should already run their tests
//! with the right `format`, and teach the keys they will reach for next, so
//! the template explains each key where it stands and points at the README.
//!
//! Detection only looks (file names, a few lines of `Cargo.toml`, `go.mod`,
//! `pyproject.toml`, `setup.cfg`, `tox.ini`, the selftests' `Makefile`),
//! never runs the project's tools, except to ask whether `cargo-nextest`
//! is on `PATH`.

mod detect;
mod error;
mod template;

pub use detect::{
    Cargo, Detected, Kselftest, Nextest, Options, Project, Pytest, Target, detect, nextest_on_path,
};
pub use error::StarterError;
pub use template::render;
