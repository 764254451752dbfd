//! Test harness for warden's integration tests, in the style of `just`'s:
//! a builder that writes a config into a fresh temporary directory, runs the
//! real `warden` binary there, and returns everything a test wants to look
//! at (exit code, output, elapsed time, logs, parsed JUnit).
//!
//! Every run carries a unique `WARDEN_TEST_MARK=<value>` in its environment,
//! which every batch process inherits. After warden exits, `/proc` is
//! scanned for live processes with exactly that entry: any found is a leak
//! (recorded, then SIGKILLed, then the test fails), so no test can leave
//! processes behind unnoticed.
//!
//! | module | holds |
//! | --- | --- |
//! | `builder` | [`Warden`]: config, command line, environment, watchdog; `q`, `fixture` |
//! | `run` | [`Running`] (signal, wait) and [`Run`] (output, logs, JUnit, assertions) |
//! | `procs` | the leak scan: processes carrying a run's marker, and killing exactly those |
//! | `cgroups` | whether cgroup containment works here; the run cgroups warden left |
//! | `junit` | the testcases of a JUnit document ([`TestCase`], [`Kind`]) |
//! | `http` | HTTP requests to `warden serve` |
//! | `history_seed`, `postgres` | a seeded history store; a throwaway PostgreSQL |

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::time::{Duration, Instant};

mod builder;
mod cgroups;
mod junit;
mod procs;
mod run;

pub mod history_seed;
pub mod http;
#[macro_use]
pub mod postgres;

// Each test binary uses a different part of these too.
#[allow(unused_imports)]
pub use builder::{Containment, Warden, fixture, q, q_array, warden_bin};
#[allow(unused_imports)]
pub use cgroups::{
    cgroup_parent, cgroup_unavailable, cgroup2, leftover_cgroups, v1_leftovers, v1_parents,
};
#[allow(unused_imports)]
pub use junit::{Kind, TestCase, named, parse_junit};
#[allow(unused_imports)]
pub use procs::{Leftover, kill_marked, marked_processes};
#[allow(unused_imports)]
pub use run::{Run, Running};

/// The environment variable marking every process of one test's run.
pub const MARK_VAR: &str = "WARDEN_TEST_MARK";

/// Runs a future to completion on a fresh current-thread runtime: for the
/// synchronous tests that look into a history store with sqlx.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Generates a `cgroup` and a `pgroup` test from one body, in a module named
/// after the test: `name::cgroup` (skipped with a message when cgroup
/// containment is unavailable) and `name::pgroup`. Attributes before `fn`
/// apply to both; `cgroup #[..]` / `pgroup #[..]` to one only.
#[allow(unused_macros)]
macro_rules! both_containments {
    (
        $(#[$meta:meta])*
        $(cgroup #[$cmeta:meta])*
        $(pgroup #[$pmeta:meta])*
        fn $name:ident($w:ident) $body:block
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            $(#[$cmeta])*
            #[test]
            fn cgroup() {
                let Some($w) = $crate::common::Warden::cgroup() else {
                    return;
                };
                $body
            }

            $(#[$meta])*
            $(#[$pmeta])*
            #[test]
            fn pgroup() {
                let $w = $crate::common::Warden::pgroup();
                $body
            }
        }
    };
}
