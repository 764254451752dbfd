//! What a project directory holds, by the files its tools expect.

use std::path::{Path, PathBuf};

use super::error::StarterError;

/// What `warden init` was asked for beyond the directory.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--selftests`: the kernel selftest targets to run (`all`: every
    /// one); empty: [`QUICK_TARGETS`] that the tree has, else all.
    pub selftests: Vec<String>,
    /// Whether `cargo nextest` can be used (`cargo-nextest` on `PATH`).
    pub nextest_installed: bool,
}

/// Quick, self-contained selftest targets (no network setup, no special
/// hardware, seconds each): the default selection in a full kernel tree,
/// which has over a hundred targets.
pub const QUICK_TARGETS: &[&str] = &["size", "kcmp", "mincore", "futex", "clone3", "membarrier"];

/// One kind of project found, with what its batch needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Project {
    Cargo(Cargo),
    /// `go.mod`, with its module path.
    Go {
        module: String,
    },
    Pytest(Pytest),
    Kselftest(Kselftest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cargo {
    /// `Cargo.toml` has a `[workspace]` table.
    pub workspace: bool,
    /// The package's name, when `Cargo.toml` has a `[package]`.
    pub package: Option<String>,
    /// nextest, when it is installed and `.config/nextest.toml` has a
    /// profile that writes JUnit.
    pub nextest: Option<Nextest>,
    /// `cargo-nextest` is installed but writes no JUnit (said in a comment).
    pub nextest_without_junit: bool,
}

/// A nextest profile with `[profile.NAME.junit] path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nextest {
    pub profile: String,
    /// Where nextest writes the JUnit file, relative to the project:
    /// `target/nextest/<profile>/<path>`.
    pub junit: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pytest {
    /// The file that says so: `pytest.ini`, `pyproject.toml`, `conftest.py`, …
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kselftest {
    /// The targets to run, one batch each.
    pub selected: Vec<Target>,
    /// The tree's other targets, listed in a comment.
    pub others: Vec<String>,
}

/// A selftest target (`net`, `net/forwarding`) and its per-test timeout
/// from its `settings` file (`timeout=N` seconds; 0: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub settings_timeout: Option<u64>,
}

/// What was found, in template order, and the directory it is in.
#[derive(Debug, Clone)]
pub struct Detected {
    pub dir: PathBuf,
    pub projects: Vec<Project>,
}

impl Project {
    /// One line for the terminal: what was found and from which file.
    pub fn describe(&self) -> String {
        match self {
            Project::Cargo(c) => {
                let what = if c.workspace {
                    "a Cargo workspace".to_string()
                } else {
                    match &c.package {
                        Some(p) => format!("a Cargo package `{p}`"),
                        None => "a Cargo project".to_string(),
                    }
                };
                let runner = match &c.nextest {
                    Some(n) => format!("cargo nextest (profile `{}`, format junit)", n.profile),
                    None => "cargo test (format libtest)".to_string(),
                };
                format!("{what} (Cargo.toml): {runner}")
            }
            Project::Go { module } => {
                format!("a Go module `{module}` (go.mod): go test -json (format go-json)")
            }
            Project::Pytest(p) => {
                format!(
                    "a pytest project ({}): pytest --junitxml (format junit)",
                    p.evidence
                )
            }
            Project::Kselftest(k) => {
                let names: Vec<&str> = k.selected.iter().map(|t| t.name.as_str()).collect();
                let all = k.selected.len() + k.others.len();
                format!(
                    "a kernel tree (tools/testing/selftests, {all} target{}): run_kselftest.sh \
                     (format tap), {} selected: {}",
                    if all == 1 { "" } else { "s" },
                    k.selected.len(),
                    names.join(", ")
                )
            }
        }
    }
}

/// Looks at `dir` for each kind of project. Nothing found is not an
/// error: the template is then the generic one.
pub fn detect(dir: &Path, options: &Options) -> Result<Detected, StarterError> {
    // The directory must be readable: everything below tolerates missing files.
    std::fs::read_dir(dir).map_err(|source| StarterError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut projects = Vec::new();
    if let Some(c) = cargo(dir, options) {
        projects.push(Project::Cargo(c));
    }
    if let Some(module) = go(dir) {
        projects.push(Project::Go { module });
    }
    if let Some(p) = pytest(dir) {
        projects.push(Project::Pytest(p));
    }
    match kselftest(dir, &options.selftests)? {
        Some(k) => projects.push(Project::Kselftest(k)),
        None if !options.selftests.is_empty() => return Err(StarterError::NotAKernelTree),
        None => {}
    }
    Ok(Detected {
        dir: dir.to_path_buf(),
        projects,
    })
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn cargo(dir: &Path, options: &Options) -> Option<Cargo> {
    let text = read(&dir.join("Cargo.toml"))?;
    let table: Option<toml::Table> = text.parse().ok();
    let workspace = table.as_ref().is_some_and(|t| t.contains_key("workspace"));
    let package = table
        .as_ref()
        .and_then(|t| t.get("package"))
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned);
    let junit = nextest_junit(dir);
    let (nextest, nextest_without_junit) = match (options.nextest_installed, junit) {
        (true, Some(n)) => (Some(n), false),
        (true, None) => (None, true),
        (false, _) => (None, false),
    };
    Some(Cargo {
        workspace,
        package,
        nextest,
        nextest_without_junit,
    })
}

/// `.config/nextest.toml`'s profile that writes JUnit: `ci` first, then
/// `default`, then any.
fn nextest_junit(dir: &Path) -> Option<Nextest> {
    let text = read(&dir.join(".config/nextest.toml"))?;
    let table: toml::Table = text.parse().ok()?;
    let profiles = table.get("profile")?.as_table()?;
    let junit_of = |name: &str| -> Option<Nextest> {
        let path = profiles.get(name)?.get("junit")?.get("path")?.as_str()?;
        Some(Nextest {
            profile: name.to_owned(),
            junit: format!("target/nextest/{name}/{path}"),
        })
    };
    ["ci", "default"]
        .into_iter()
        .find_map(junit_of)
        .or_else(|| profiles.keys().find_map(|k| junit_of(k)))
}

fn go(dir: &Path) -> Option<String> {
    let text = read(&dir.join("go.mod"))?;
    let module = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("module "))
        .map(|m| m.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| "(unnamed)".to_owned());
    Some(module)
}

/// pytest's own config files first (the ones pytest reads for its
/// `rootdir`), then the test files it would collect.
fn pytest(dir: &Path) -> Option<Pytest> {
    let found = |evidence: &str| {
        Some(Pytest {
            evidence: evidence.to_owned(),
        })
    };
    if dir.join("pytest.ini").is_file() {
        return found("pytest.ini");
    }
    let has_section = |file: &str, sections: &[&str]| {
        read(&dir.join(file)).is_some_and(|t| {
            t.lines()
                .any(|l| sections.iter().any(|s| l.trim().starts_with(s)))
        })
    };
    if has_section("pyproject.toml", &["[tool.pytest"]) {
        return found("pyproject.toml [tool.pytest.ini_options]");
    }
    if has_section("setup.cfg", &["[tool:pytest]"]) {
        return found("setup.cfg [tool:pytest]");
    }
    if has_section("tox.ini", &["[pytest]"]) {
        return found("tox.ini [pytest]");
    }
    if dir.join("conftest.py").is_file() {
        return found("conftest.py");
    }
    for sub in ["tests", "test", "."] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let test_file = entries.filter_map(Result::ok).find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_test =
                name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"));
            is_test.then_some(name)
        });
        if let Some(name) = test_file {
            let path = if sub == "." {
                name
            } else {
                format!("{sub}/{name}")
            };
            return found(&path);
        }
    }
    None
}

const SELFTESTS: &str = "tools/testing/selftests";

fn kselftest(dir: &Path, wanted: &[String]) -> Result<Option<Kselftest>, StarterError> {
    let root = dir.join(SELFTESTS);
    if !root.is_dir() {
        return Ok(None);
    }
    let all = targets(&root);
    let selected: Vec<String> = if wanted.iter().any(|w| w == "all") {
        all.clone()
    } else if !wanted.is_empty() {
        let unknown: Vec<&str> = wanted
            .iter()
            .filter(|w| !root.join(w.as_str()).is_dir())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(StarterError::UnknownTargets(unknown.join(", ")));
        }
        wanted.to_vec()
    } else {
        let quick: Vec<String> = QUICK_TARGETS
            .iter()
            .filter(|t| all.iter().any(|a| a == *t))
            .map(|t| (*t).to_owned())
            .collect();
        if quick.is_empty() { all.clone() } else { quick }
    };
    let others = all
        .iter()
        .filter(|t| !selected.contains(t))
        .cloned()
        .collect();
    let selected = selected
        .into_iter()
        .map(|name| Target {
            settings_timeout: settings_timeout(&root.join(&name)),
            name,
        })
        .collect();
    Ok(Some(Kselftest { selected, others }))
}

/// The tree's targets: the selftests Makefile's `TARGETS += x` lines (the
/// list `make run_tests` and `install` use) that have a directory, else
/// every subdirectory with a Makefile. Sorted, deduplicated.
fn targets(root: &Path) -> Vec<String> {
    let mut found: Vec<String> = read(&root.join("Makefile"))
        .map(|m| {
            m.lines()
                .filter_map(|l| l.trim().strip_prefix("TARGETS += "))
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty() && root.join(t).is_dir())
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        found = std::fs::read_dir(root)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().join("Makefile").is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    }
    found.sort();
    found.dedup();
    found
}

/// `timeout=N` in the target's `settings` file: run_kselftest.sh's
/// per-test timeout (45 s when absent; 0 turns it off).
fn settings_timeout(target: &Path) -> Option<u64> {
    read(&target.join("settings"))?
        .lines()
        .find_map(|l| l.trim().strip_prefix("timeout="))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether `cargo-nextest` is an executable file in one of `PATH`'s directories.
pub fn nextest_on_path() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join("cargo-nextest"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn found(files: &[(&str, &str)], options: &Options) -> Vec<Project> {
        let dir = tree(files);
        detect(dir.path(), options).unwrap().projects
    }

    #[test]
    fn nothing_is_nothing() {
        assert!(found(&[("README", "hi")], &Options::default()).is_empty());
    }

    #[test]
    fn cargo_package_workspace_and_nextest() {
        let p = found(
            &[(
                "Cargo.toml",
                "[package]\nname = \"shop\"\nversion = \"0.1.0\"\n",
            )],
            &Options::default(),
        );
        assert_eq!(
            p,
            [Project::Cargo(Cargo {
                workspace: false,
                package: Some("shop".into()),
                nextest: None,
                nextest_without_junit: false,
            })]
        );
        let files = [
            ("Cargo.toml", "[workspace]\nmembers = [\"a\"]\n"),
            (
                ".config/nextest.toml",
                "[profile.ci.junit]\npath = \"junit.xml\"\n",
            ),
        ];
        let with = Options {
            nextest_installed: true,
            ..Options::default()
        };
        let Project::Cargo(c) = &found(&files, &with)[0] else {
            panic!("not cargo")
        };
        assert!(c.workspace);
        assert_eq!(
            c.nextest,
            Some(Nextest {
                profile: "ci".into(),
                junit: "target/nextest/ci/junit.xml".into()
            })
        );
        // Configured but not installed: cargo test.
        let Project::Cargo(c) = &found(&files, &Options::default())[0] else {
            panic!("not cargo")
        };
        assert_eq!(c.nextest, None);
        // Installed, no JUnit configured: cargo test, and a comment says why.
        let Project::Cargo(c) = &found(&files[..1], &with)[0] else {
            panic!("not cargo")
        };
        assert!(c.nextest.is_none() && c.nextest_without_junit);
    }

    #[test]
    fn go_module_path() {
        let p = found(
            &[("go.mod", "module example.com/shop\n\ngo 1.21\n")],
            &Options::default(),
        );
        assert_eq!(
            p,
            [Project::Go {
                module: "example.com/shop".into()
            }]
        );
    }

    #[test]
    fn pytest_by_config_then_by_files() {
        let evidence = |files: &[(&str, &str)]| match &found(files, &Options::default())[..] {
            [Project::Pytest(p)] => p.evidence.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(evidence(&[("pytest.ini", "[pytest]\n")]), "pytest.ini");
        assert_eq!(
            evidence(&[(
                "pyproject.toml",
                "[tool.pytest.ini_options]\naddopts = \"-q\"\n"
            )]),
            "pyproject.toml [tool.pytest.ini_options]"
        );
        assert_eq!(
            evidence(&[("setup.cfg", "[tool:pytest]\n")]),
            "setup.cfg [tool:pytest]"
        );
        assert_eq!(evidence(&[("conftest.py", "")]), "conftest.py");
        assert_eq!(
            evidence(&[("tests/test_cart.py", "def test_x(): pass\n")]),
            "tests/test_cart.py"
        );
        // A pyproject.toml without pytest's table, and no tests: not pytest.
        assert!(
            found(
                &[("pyproject.toml", "[project]\nname = \"x\"\n")],
                &Options::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn kselftest_targets_from_the_makefile_quick_ones_first() {
        let files = [
            (
                "tools/testing/selftests/Makefile",
                "TARGETS += net\nTARGETS += size\nTARGETS += kcmp\nTARGETS += gone\n",
            ),
            ("tools/testing/selftests/net/Makefile", ""),
            ("tools/testing/selftests/net/settings", "timeout=1500\n"),
            ("tools/testing/selftests/size/Makefile", ""),
            ("tools/testing/selftests/kcmp/Makefile", ""),
        ];
        let k = |options: &Options| match &found(&files, options)[..] {
            [Project::Kselftest(k)] => k.clone(),
            other => panic!("{other:?}"),
        };
        let default = k(&Options::default());
        let names: Vec<&str> = default.selected.iter().map(|t| t.name.as_str()).collect();
        // QUICK_TARGETS' order; `gone` has no directory.
        assert_eq!(names, ["size", "kcmp"]);
        assert_eq!(default.others, ["net"]);
        let net = k(&Options {
            selftests: vec!["net".into()],
            ..Options::default()
        });
        assert_eq!(
            net.selected,
            [Target {
                name: "net".into(),
                settings_timeout: Some(1500)
            }]
        );
        let all = k(&Options {
            selftests: vec!["all".into()],
            ..Options::default()
        });
        assert_eq!(all.selected.len(), 3);
        assert!(all.others.is_empty());
        let dir = tree(&files);
        let unknown = Options {
            selftests: vec!["nope".into()],
            ..Options::default()
        };
        let err = detect(dir.path(), &unknown).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        let plain = tree(&[("README", "")]);
        assert!(matches!(
            detect(plain.path(), &unknown),
            Err(StarterError::NotAKernelTree)
        ));
    }

    #[test]
    fn kselftest_without_a_target_list_uses_directories_with_a_makefile() {
        let p = found(
            &[
                ("tools/testing/selftests/demo/Makefile", ""),
                ("tools/testing/selftests/kselftest/runner.sh", ""),
            ],
            &Options::default(),
        );
        let [Project::Kselftest(k)] = &p[..] else {
            panic!("{p:?}")
        };
        assert_eq!(k.selected.len(), 1);
        assert_eq!(k.selected[0].name, "demo");
    }
}
