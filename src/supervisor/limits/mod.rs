//! A batch's limits (`config::Limits`) written to its cgroups: the v2
//! files (`cpu.max`, `memory.max`, `memory.high`, `pids.max`, `io.max`)
//! where the unified hierarchy has the controller, else the v1 ones in a
//! per-batch group of that controller's hierarchy (`v1`). Hosts differ: a
//! pure v2 host has every controller in the unified hierarchy; a hybrid
//! host (this project's CI machine) has none there but mounts `memory`,
//! `cpu`, `blkio` and `pids` as v1 hierarchies.
//!
//! Where each controller is for this run is decided once, on the first
//! batch that needs it ([`Host`]); a batch without limits costs nothing
//! here. A limit that cannot be applied (no cgroup containment, the
//! controller in neither hierarchy, an I/O limit on a directory whose
//! filesystem has no block device) is an error: `warden check` reports it,
//! and at run time the batch fails without starting, since a limit
//! silently dropped would make an experiment (`warden hunt`) lie.

mod device;
mod v1;
mod v2;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Limits;

pub use v1::{Hierarchy, hierarchies};

/// Every run's v1 groups (`warden-<id>`, with the id), for `leftovers` to
/// judge.
pub fn v1_run_groups() -> Vec<(PathBuf, String)> {
    v1::run_groups()
}

/// Kills what is left in a dead run's v1 group and removes it.
pub fn remove_dead_v1_group(dir: &Path) -> io::Result<()> {
    v1::kill_and_remove(dir)
}

/// `cpu.max`'s and `cpu.cfs_period_us`'s period, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// A controller warden limits a batch through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Io,
    Pids,
}

impl Controller {
    fn v2_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Io => "io",
            Controller::Pids => "pids",
        }
    }

    fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            other => other.v2_name(),
        }
    }
}

/// Where a controller's files are for this run's batches.
#[derive(Debug, Clone)]
enum Place {
    /// In each batch's own v2 cgroup.
    V2,
    /// In a per-batch group under this run's group of a v1 hierarchy.
    V1(Arc<v1::RunGroup>),
}

/// The run's side: its v2 cgroup, and per controller where it is.
#[derive(Debug)]
pub struct Host {
    run_id: String,
    /// The run's v2 cgroup, or why batches have none.
    run_dir: Result<PathBuf, String>,
    hierarchies: OnceLock<Vec<Hierarchy>>,
    places: Mutex<HashMap<Controller, Result<Place, String>>>,
    /// Whether the batch cgroups have pressure files (PSI on).
    pressure: OnceLock<bool>,
}

/// What a batch asks for.
pub struct Request<'a> {
    pub limits: &'a Limits,
    /// Its memory is to be measured even without a memory limit (it has an
    /// expected `memory`, which its peaks should inform).
    pub measure_memory: bool,
    /// The batch's name, for its v1 groups.
    pub unit: &'a str,
    /// Its v2 cgroup, when containment is by cgroup.
    pub cgroup: Option<&'a Path>,
    /// Directories whose disks its I/O limits apply to: its working
    /// directory and its scratch directory.
    pub io_dirs: Vec<PathBuf>,
}

/// A batch's limits as applied: its v1 groups (removed with [`remove`])
/// and what its cgroups can tell when it ends.
#[derive(Debug, Default)]
pub struct Applied {
    /// The batch's v1 groups, by controller.
    v1: Vec<(Controller, PathBuf)>,
    /// The hard memory limit written, for the OOM reason.
    pub memory_limit: Option<u64>,
    /// Its v2 cgroup has the memory (`memory.peak`, `memory.events`) and
    /// io (`io.stat`) controllers' files, and pressure files.
    pub v2_memory: bool,
    pub v2_io: bool,
    pub pressure: bool,
}

impl Applied {
    /// The `cgroup.procs` files the first process writes itself into.
    pub fn procs_paths(&self) -> Vec<PathBuf> {
        self.v1
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect()
    }

    /// The batch's v1 group of `controller`, if it has one.
    pub fn v1_group(&self, controller: Controller) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    /// Removes the batch's v1 groups (its processes are gone); what could
    /// not be removed, as warnings.
    pub fn remove(self) -> Vec<String> {
        let mut problems = Vec::new();
        for (_, dir) in self.v1 {
            if let Err(e) = crate::supervisor::containment::remove_tree(&dir) {
                problems.push(format!("cannot remove cgroup {}: {e}", dir.display()));
            }
        }
        problems
    }
}

impl Host {
    pub fn new(run_id: &str, run_dir: Result<PathBuf, String>) -> Host {
        Host {
            run_id: run_id.to_string(),
            run_dir,
            hierarchies: OnceLock::new(),
            places: Mutex::default(),
            pressure: OnceLock::new(),
        }
    }

    fn hierarchies(&self) -> &[Hierarchy] {
        self.hierarchies.get_or_init(hierarchies)
    }

    /// Where `c` is for this run's batches, decided on first need.
    fn place(&self, c: Controller) -> Result<Place, String> {
        let mut places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        places
            .entry(c)
            .or_insert_with(|| self.find_place(c))
            .clone()
    }

    fn find_place(&self, c: Controller) -> Result<Place, String> {
        let run_dir = self.run_dir.as_ref().map_err(|why| {
            format!("batches have no cgroup (containment by process group: {why})")
        })?;
        let v2_why = match v2::enable(run_dir, c.v2_name()) {
            Ok(()) => return Ok(Place::V2),
            Err(why) => why,
        };
        let Some(h) = self.hierarchies().iter().find(|h| h.has(c.v1_name())) else {
            return Err(format!(
                "no {} controller: {v2_why}, and no cgroup v1 {} hierarchy is mounted",
                c.v2_name(),
                c.v1_name()
            ));
        };
        v1::RunGroup::create(h, &self.run_id)
            .map(|g| Place::V1(Arc::new(g)))
            .map_err(|e| format!("no {} controller: {v2_why}; cgroup v1: {e}", c.v2_name()))
    }

    fn has_pressure(&self) -> bool {
        *self.pressure.get_or_init(|| {
            self.run_dir
                .as_ref()
                .is_ok_and(|d| d.join("cpu.pressure").exists())
        })
    }

    /// Where each controller these limits need goes, for `warden check`:
    /// `memory: cgroup v1 (/sys/fs/cgroup/memory/…/warden-<run>)`, or why
    /// it can't be had.
    pub fn describe(&self, limits: &Limits) -> Vec<String> {
        let mut seen = Vec::new();
        let mut lines = Vec::new();
        for (_, c) in needed(limits) {
            if seen.contains(&c) {
                continue;
            }
            seen.push(c);
            let place = match self.place(c) {
                Ok(Place::V2) => "cgroup v2".to_string(),
                Ok(Place::V1(g)) => format!("cgroup v1 ({})", g.dir.display()),
                Err(why) => format!("cannot be applied: {why}"),
            };
            lines.push(format!("{}: {place}", c.v2_name()));
        }
        lines
    }

    /// What `warden check` says of these limits: one line per limit that
    /// cannot be applied (`memory=4G: no memory controller: …`).
    pub fn problems(&self, limits: &Limits, io_dirs: &[PathBuf]) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, c) in needed(limits) {
            if let Err(why) = self.place(c) {
                problems.push(format!("{key}: {why}"));
            } else if c == Controller::Io
                && let Err(why) = device::disks_of(io_dirs)
            {
                problems.push(format!("{key}: {why}"));
            }
        }
        problems
    }

    /// Writes a batch's limits to its cgroups, creating its v1 groups; the
    /// batch's process is not started yet. An error names the limit and
    /// why it can't be applied; nothing is left behind then.
    pub fn apply(&self, req: &Request) -> Result<Applied, String> {
        let mut applied = Applied {
            pressure: req.cgroup.is_some() && self.has_pressure(),
            ..Applied::default()
        };
        let wants_memory = req.measure_memory && req.cgroup.is_some();
        if req.limits.is_empty() && !wants_memory {
            // Nothing to write; the v2 cgroup has what other batches'
            // limits enabled for the run.
            if req.cgroup.is_some() {
                let places = self.places.lock().unwrap_or_else(|p| p.into_inner());
                let v2 = |c| matches!(places.get(&c), Some(Ok(Place::V2)));
                applied.v2_memory = v2(Controller::Memory);
                applied.v2_io = v2(Controller::Io);
            }
            return Ok(applied);
        }
        match self.write_all(req, &mut applied) {
            Ok(()) => Ok(applied),
            Err(e) => {
                let _ = applied.remove();
                Err(e)
            }
        }
    }

    fn write_all(&self, req: &Request, applied: &mut Applied) -> Result<(), String> {
        let l = req.limits;
        let mut wanted: Vec<(String, Controller)> = needed(l);
        if req.measure_memory && !wanted.iter().any(|(_, c)| *c == Controller::Memory) {
            // Measuring only: where there is no memory controller, no peak.
            if self.place(Controller::Memory).is_ok() {
                wanted.push(("memory (measured)".into(), Controller::Memory));
            }
        }
        let devices = if l.io_read.is_some() || l.io_write.is_some() {
            let key = io_key(l);
            device::disks_of(&req.io_dirs).map_err(|why| format!("{key}: {why}"))?
        } else {
            Vec::new()
        };
        let mut done: Vec<Controller> = Vec::new();
        for (key, c) in wanted {
            if done.contains(&c) {
                continue;
            }
            done.push(c);
            let place = self.place(c).map_err(|why| format!("{key}: {why}"))?;
            let dir = match place {
                Place::V2 => {
                    match c {
                        Controller::Memory => applied.v2_memory = true,
                        Controller::Io => applied.v2_io = true,
                        _ => {}
                    }
                    req.cgroup
                        .ok_or_else(|| format!("{key}: the batch has no cgroup"))?
                        .to_path_buf()
                }
                Place::V1(group) => {
                    let dir = group
                        .batch(req.unit)
                        .map_err(|e| format!("{key}: cgroup v1: {e}"))?;
                    applied.v1.push((c, dir.clone()));
                    dir
                }
            };
            let v1 = applied.v1_group(c).is_some();
            for (file, value) in files(c, v1, l, &devices) {
                write(&dir, file, &value).map_err(|e| format!("{key}: {e}"))?;
            }
            if c == Controller::Memory {
                applied.memory_limit = l.memory;
            }
        }
        Ok(())
    }

    /// Removes the run's v1 groups, after every batch's.
    pub fn finish(&self) {
        let places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        for place in places.values() {
            if let Ok(Place::V1(group)) = place {
                group.remove();
            }
        }
    }
}

/// The limits set, each with the controller it needs, as the config
/// writes them (`memory=4G`).
fn needed(l: &Limits) -> Vec<(String, Controller)> {
    let size = crate::size::exact;
    let mut out = Vec::new();
    if let Some(c) = l.cpu {
        out.push((format!("cpu={c}%"), Controller::Cpu));
    }
    if let Some(m) = l.memory {
        out.push((format!("memory={}", size(m)), Controller::Memory));
    }
    if let Some(m) = l.memory_high {
        out.push((format!("memory-high={}", size(m)), Controller::Memory));
    }
    if let Some(p) = l.pids {
        out.push((format!("pids={p}"), Controller::Pids));
    }
    if l.io_read.is_some() || l.io_write.is_some() {
        out.push((io_key(l), Controller::Io));
    }
    out
}

fn io_key(l: &Limits) -> String {
    let size = crate::size::exact;
    [
        l.io_read.map(|r| format!("io-read={}", size(r))),
        l.io_write.map(|w| format!("io-write={}", size(w))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// The files one controller's limits go to, and what is written to each.
fn files(
    c: Controller,
    v1: bool,
    l: &Limits,
    devices: &[device::Device],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match (c, v1) {
        (Controller::Memory, false) => {
            out.extend(l.memory.map(|m| ("memory.max", m.to_string())));
            out.extend(l.memory_high.map(|m| ("memory.high", m.to_string())));
        }
        (Controller::Memory, true) => {
            out.extend(l.memory.map(|m| ("memory.limit_in_bytes", m.to_string())));
            // v1 has no throttling point: the soft limit, reclaimed
            // towards under memory pressure, is the nearest.
            out.extend(
                l.memory_high
                    .map(|m| ("memory.soft_limit_in_bytes", m.to_string())),
            );
        }
        (Controller::Cpu, false) => {
            out.extend(
                l.cpu
                    .map(|p| ("cpu.max", format!("{} {CPU_PERIOD}", cpu_quota(p)))),
            );
        }
        (Controller::Cpu, true) => {
            if let Some(p) = l.cpu {
                out.push(("cpu.cfs_period_us", CPU_PERIOD.to_string()));
                out.push(("cpu.cfs_quota_us", cpu_quota(p).to_string()));
            }
        }
        (Controller::Pids, _) => out.extend(l.pids.map(|p| ("pids.max", p.to_string()))),
        (Controller::Io, false) => {
            for d in devices {
                let mut line = d.to_string();
                if let Some(r) = l.io_read {
                    line.push_str(&format!(" rbps={r}"));
                }
                if let Some(w) = l.io_write {
                    line.push_str(&format!(" wbps={w}"));
                }
                out.push(("io.max", line));
            }
        }
        (Controller::Io, true) => {
            for d in devices {
                out.extend(
                    l.io_read
                        .map(|r| ("blkio.throttle.read_bps_device", format!("{d} {r}"))),
                );
                out.extend(
                    l.io_write
                        .map(|w| ("blkio.throttle.write_bps_device", format!("{d} {w}"))),
                );
            }
        }
    }
    out
}

/// Microseconds of CPU per period for `percent` of one CPU.
fn cpu_quota(percent: u32) -> u64 {
    u64::from(percent) * CPU_PERIOD / 100
}

/// One write, as the kernel wants it: the whole value in one `write`.
fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write `{value}` to {}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            cpu: Some(150),
            memory: Some(4 << 30),
            memory_high: Some(3 << 30),
            pids: Some(4096),
            io_read: Some(50 << 20),
            io_write: Some(20 << 20),
        }
    }

    #[test]
    fn v2_and_v1_files() {
        let l = limits();
        let d = [device::Device {
            major: 254,
            minor: 0,
        }];
        let v2: Vec<_> = [
            Controller::Cpu,
            Controller::Memory,
            Controller::Pids,
            Controller::Io,
        ]
        .into_iter()
        .flat_map(|c| files(c, false, &l, &d))
        .collect();
        assert_eq!(
            v2,
            vec![
                ("cpu.max", "150000 100000".to_string()),
                ("memory.max", "4294967296".into()),
                ("memory.high", "3221225472".into()),
                ("pids.max", "4096".into()),
                ("io.max", "254:0 rbps=52428800 wbps=20971520".into()),
            ]
        );
        let v1: Vec<_> = [
            Controller::Cpu,
            Controller::Memory,
            Controller::Pids,
            Controller::Io,
        ]
        .into_iter()
        .flat_map(|c| files(c, true, &l, &d))
        .collect();
        assert_eq!(
            v1,
            vec![
                ("cpu.cfs_period_us", "100000".to_string()),
                ("cpu.cfs_quota_us", "150000".into()),
                ("memory.limit_in_bytes", "4294967296".into()),
                ("memory.soft_limit_in_bytes", "3221225472".into()),
                ("pids.max", "4096".into()),
                ("blkio.throttle.read_bps_device", "254:0 52428800".into()),
                ("blkio.throttle.write_bps_device", "254:0 20971520".into()),
            ]
        );
    }

    #[test]
    fn limits_named_as_written() {
        let keys: Vec<String> = needed(&limits()).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "cpu=150%",
                "memory=4G",
                "memory-high=3G",
                "pids=4096",
                "io-read=50M io-write=20M"
            ]
        );
    }

    #[test]
    fn without_a_cgroup_every_limit_is_a_problem() {
        let host = Host::new("x", Err("forced".into()));
        let p = host.problems(&limits(), &[]);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(
            p[1].starts_with(
                "memory=4G: batches have no cgroup (containment by process group: forced)"
            ),
            "{p:?}"
        );
        // Nothing asked, nothing to say, nothing done.
        assert!(host.problems(&Limits::default(), &[]).is_empty());
        let applied = host
            .apply(&Request {
                limits: &Limits::default(),
                measure_memory: true,
                unit: "b",
                cgroup: None,
                io_dirs: vec![],
            })
            .unwrap();
        assert!(applied.procs_paths().is_empty());
    }
}
