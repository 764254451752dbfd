//! cgroup v2: a controller for the batch cgroups is one the run's cgroup
//! enables in its `cgroup.subtree_control`, which it can only do when its
//! parent, warden's own cgroup, offers it (`cgroup.controllers`). When
//! warden's cgroup offers it to no child, enabling it there is tried too;
//! that fails when warden's cgroup has processes of its own (the "no
//! internal processes" rule; the root cgroup is exempt), and then the
//! reason is said and v1 is the fallback.

use std::fs;
use std::path::Path;

/// Why `EBUSY`, and what to do: the usual case on a pure v2 CI host, where
/// warden runs in its CI agent's service cgroup beside other processes.
const BUSY_HINT: &str = " (a cgroup v2 group that holds processes cannot pass \
    controllers on to its children: run warden in a cgroup of its own with the controllers \
    delegated, e.g. `systemd-run --scope -p Delegate=yes warden run …`, or in a container \
    with a delegated cgroup)";

fn offers(dir: &Path, controller: &str) -> Result<bool, String> {
    let path = dir.join("cgroup.controllers");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text.split_whitespace().any(|c| c == controller))
}

fn enable_in(dir: &Path, controller: &str) -> Result<(), String> {
    let path = dir.join("cgroup.subtree_control");
    fs::write(&path, format!("+{controller}"))
        .map_err(|e| format!("cannot enable it in {}: {e}", path.display()))
}

/// Enables `controller` for the cgroups below `run_dir`, or says why it
/// can't be.
pub fn enable(run_dir: &Path, controller: &str) -> Result<(), String> {
    if !offers(run_dir, controller)? {
        let parent = run_dir.parent().unwrap_or(Path::new("/"));
        if !offers(parent, controller)? {
            return Err(format!(
                "cgroup v2 does not offer the {controller} controller to warden's cgroup \
                 ({} lacks it)",
                parent.join("cgroup.controllers").display()
            ));
        }
        enable_in(parent, controller).map_err(|e| {
            format!(
                "warden's cgroup does not pass on {controller}: {e}{}",
                if e.contains("os error 16") {
                    BUSY_HINT
                } else {
                    ""
                }
            )
        })?;
    }
    enable_in(run_dir, controller)
}
