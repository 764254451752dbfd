//! JUnit XML written by other runners (Surefire, gotestsum, pytest,
//! nextest, warden itself) as history records, so the history can start
//! from the CI artifacts a project already has.
//!
//! Files are read with the streaming reader of
//! [`parsers::junit`](crate::parsers::junit) keeping no output, so memory
//! grows with the number of tests, not the size of the files. Everything is
//! read before anything is written: a malformed file, or a `time` out of
//! range, imports nothing.
//!
//! - Reading ([`read_file`]) turns each file into its suites and cases
//!   ([`dialect`]); assembling ([`ImportedRun::new`], [`assemble`]) makes
//!   batches and test records of them.
//! - Statuses are those of a batch `format = "junit"`: each case becomes a
//!   [`TestResult`](crate::parsers::TestResult) by the same
//!   [`Case::into_result`](crate::parsers::junit::Case::into_result), and
//!   repeated cases are merged or told apart by the same
//!   [`repeat`](crate::parsers::repeat) rule (reruns within one
//!   `<testsuite>` merge; namesakes in other suites or files get ` (in
//!   LABEL)` or ` #2`), then recorded as `warden run` records them.
//! - Names: a test is recorded as `<batch>/<classname>/<name>` by
//!   [`test_path`](crate::parsers::junit::test_path): the batch is
//!   `--batch NAME` (all suites go into that one batch, as a batch's files
//!   do in `warden run`), else each `<testsuite name>`. warden's own report
//!   (`<testsuites name="warden">`) keeps the batches it names: batches of
//!   its `warden`, `setup` and `post` suites are recorded by their name
//!   alone, the tests of a batch as `batch/test`.
//! - Times: a suite's `timestamp` is usually local time without a zone; it
//!   is taken as UTC (a zone, when given, is honoured). A `time` must be a
//!   duration of 0 to a year.

mod assemble;
mod dialect;

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::parsers::junit::{Keep, Times, XmlError, read_xml};
pub use assemble::{Counts, ImportedRun};
pub use dialect::{ImportedCase, ImportedSuite};

/// Read buffer per file: large reads, few syscalls.
const READ_BUFFER: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("{}:{line}:{column}: malformed JUnit XML: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{}:{line}:{column}: time=\"{value}\" is not a duration of 0 to {} seconds", path.display(), crate::parsers::junit::MAX_TIME.as_secs())]
    BadTime {
        path: PathBuf,
        line: u64,
        column: u64,
        value: String,
    },
    #[error("{}: not JUnit XML: {error}", path.display())]
    NotJunit { path: PathBuf, error: XmlError },
}

/// One JUnit file, read: its suites, not yet placed in a run's time.
#[derive(Debug)]
pub struct JunitFile {
    pub path: PathBuf,
    /// warden's own report (`<testsuites name="warden">` at the root): its
    /// suites are warden's batches, whatever `--batch` says.
    pub warden: bool,
    pub suites: Vec<ImportedSuite>,
    /// The earliest `timestamp` of its `<testsuites>` and `<testsuite>` elements.
    pub earliest: Option<SystemTime>,
    /// The sum of its outermost suites' durations: how long it took if
    /// they ran one after another.
    pub duration: Duration,
    pub modified: Option<SystemTime>,
}

/// Reads `paths` (on up to one thread per core), keeping their order.
/// The first file that cannot be read or is not JUnit, in that order, is
/// the error.
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<JunitFile>, ImportError> {
    read_each(paths, |file| file)
}

/// Reads `paths` as [`read_files`] does, each file a run of its own
/// ([`ImportedRun::new`], `at` and `batch` as there), put together on the
/// thread that read it.
pub fn read_runs(
    paths: &[PathBuf],
    at: Option<SystemTime>,
    batch: Option<&str>,
) -> Result<Vec<ImportedRun>, ImportError> {
    read_each(paths, |file| ImportedRun::new(vec![file], at, batch))
}

/// Reads each of `paths` and hands it to `then`, on up to one thread per
/// core, keeping their order.
fn read_each<T: Send>(
    paths: &[PathBuf],
    then: impl Fn(JunitFile) -> T + Sync,
) -> Result<Vec<T>, ImportError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(paths.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<T, ImportError>>>> =
        paths.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let result = read_file(path).map(&then);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut files = Vec::with_capacity(paths.len());
    // Indices are taken in order and every one taken is read, so a file
    // left unread comes after the one that failed.
    for slot in slots {
        if let Some(result) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            files.push(result?);
        }
    }
    Ok(files)
}

/// Reads one JUnit file.
pub fn read_file(path: &Path) -> Result<JunitFile, ImportError> {
    let read_error = |error| ImportError::Read {
        path: path.to_owned(),
        error,
    };
    // Not a FIFO, a device or a link to one; bounded in size.
    let (file, _) =
        crate::input::open_regular(path, crate::input::MAX_XML_BYTES).map_err(read_error)?;
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    read_source(
        path,
        BufReader::with_capacity(
            READ_BUFFER,
            crate::input::bounded(file, crate::input::MAX_XML_BYTES),
        ),
        modified,
        |offset| {
            line_column(BufReader::with_capacity(
                READ_BUFFER,
                crate::input::open_regular(path, crate::input::MAX_XML_BYTES)?
                    .0
                    .take(offset),
            ))
        },
    )
}

/// Reads one JUnit document held in memory as if it were the file `path`
/// (which is not opened): what [`read_file`] does, for the fuzz targets
/// (`fuzz/`) and tests, which have bytes rather than files.
pub fn read_bytes(path: &Path, bytes: &[u8]) -> Result<JunitFile, ImportError> {
    read_source(path, bytes, None, |offset| {
        let end = usize::try_from(offset).map_or(bytes.len(), |o| o.min(bytes.len()));
        line_column(&bytes[..end])
    })
}

/// Reads the document `source` of the file `path`; `position` turns a
/// byte offset into a line and column for an error.
fn read_source(
    path: &Path,
    source: impl BufRead,
    modified: Option<SystemTime>,
    position: impl Fn(u64) -> io::Result<(u64, u64)>,
) -> Result<JunitFile, ImportError> {
    let read_error = |error| ImportError::Read {
        path: path.to_owned(),
        error,
    };
    let default_suite = path
        .file_stem()
        .map_or_else(|| "junit".to_owned(), |s| s.to_string_lossy().into_owned());
    let mut reader = dialect::FileReader::new(default_suite);
    match read_xml(source, Keep::Messages, Times::Reject, &mut reader) {
        Ok(()) => {}
        Err(XmlError::Syntax {
            error: quick_xml::Error::Io(e),
            ..
        }) => return Err(read_error(io::Error::new(e.kind(), e.to_string()))),
        Err(XmlError::Syntax {
            position: at,
            error,
        }) => {
            let (line, column) = position(at).map_err(read_error)?;
            return Err(ImportError::Malformed {
                path: path.to_owned(),
                line,
                column,
                message: error.to_string(),
            });
        }
        Err(XmlError::BadTime {
            position: at,
            value,
        }) => {
            let (line, column) = position(at).map_err(read_error)?;
            return Err(ImportError::BadTime {
                path: path.to_owned(),
                line,
                column,
                value,
            });
        }
        Err(error) => {
            return Err(ImportError::NotJunit {
                path: path.to_owned(),
                error,
            });
        }
    }
    Ok(reader.finish(path.to_owned(), modified))
}

/// The 1-based line and column (in characters) at the end of `reader`
/// (a file read again up to an error's offset): only for an error message.
fn line_column(mut reader: impl BufRead) -> io::Result<(u64, u64)> {
    let (mut line, mut column) = (1u64, 1u64);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((line, column));
        }
        for &b in chunk {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Not a UTF-8 continuation byte: a character starts.
                column += 1;
            }
        }
        let n = chunk.len();
        reader.consume(n);
    }
}

/// A JUnit `timestamp`: RFC 3339, or without a zone (taken as UTC), with
/// `T` or a space between date and time.
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).into());
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.with_timezone(&Utc).into());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::model::TestRecord;
    use crate::phase::Phase;
    use crate::status::{RunStatus, Status, TestStatus};
    use TestStatus::{Failed, Flaky, Passed, Skipped};

    fn write(dir: &Path, name: &str, xml: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, xml).unwrap();
        path
    }

    /// One file read and made a run on its own.
    fn import(xml: &str) -> ImportedRun {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "report.xml", xml);
        ImportedRun::new(vec![read_file(&path).unwrap()], None, None)
    }

    fn test<'a>(run: &'a ImportedRun, name: &str) -> &'a TestRecord {
        run.batches
            .iter()
            .flat_map(|b| &b.tests)
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no test {name} in {:#?}", run.batches))
    }

    /// A test's status and message.
    fn outcome<'a>(run: &'a ImportedRun, name: &str) -> (TestStatus, Option<&'a str>) {
        let t = test(run, name);
        (t.status.clone(), t.message.as_deref())
    }

    fn names(run: &ImportedRun) -> Vec<&str> {
        run.batches
            .iter()
            .flat_map(|b| &b.tests)
            .map(|t| t.name.as_str())
            .collect()
    }

    fn at(rfc3339: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().into()
    }

    /// The samples the integration tests import too.
    fn sample(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/junit")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn surefire() {
        let run = import(&sample("surefire.xml"));
        assert_eq!(run.batches.len(), 1);
        let suite = &run.batches[0];
        assert_eq!(suite.name, "com.example.shop.CartTest");
        assert_eq!(suite.phase, Phase::Suite);
        assert_eq!(suite.status, Status::Failed);
        assert_eq!(suite.reason, "3 of 6 tests failed");
        assert_eq!(suite.duration, Duration::from_millis(1234));
        let t = |name: &str| outcome(&run, &format!("com.example.shop.CartTest/{name}"));
        assert_eq!(t("totalIsSum"), (Passed, None));
        assert_eq!(
            t("discountApplies"),
            (Failed, Some("expected: <85> but was: <90>"))
        );
        // No message attribute: the first line of the text.
        assert_eq!(
            t("loadsPrices"),
            (
                Failed,
                Some("java.net.ConnectException: Connection refused")
            )
        );
        assert_eq!(
            t("legacyFormat"),
            (Skipped(None), Some("disabled until v2"))
        );
        assert_eq!(t("sometimesSlow"), (Flaky, Some("timeout after 200ms")));
        // Surefire's <failure> is the first run's, <rerunFailure> the reruns'.
        assert_eq!(
            t("alwaysBroken"),
            (Failed, Some("failed 3 times: boom (attempt 1)"))
        );
        let duration =
            |name: &str| test(&run, &format!("com.example.shop.CartTest/{name}")).duration;
        assert_eq!(duration("totalIsSum"), Some(Duration::from_millis(12)));
        assert_eq!(
            duration("loadsPrices"),
            Some(Duration::from_secs_f64(1002.5))
        );
        assert_eq!(duration("legacyFormat"), None);
        assert_eq!(
            run.counts,
            Counts {
                passed: 1,
                failed: 3,
                flaky: 1,
                skipped: 1
            }
        );
        assert_eq!(run.status(), RunStatus::Failed);
    }

    #[test]
    fn gotestsum_with_rerun_fails() {
        // `gotestsum --rerun-fails --junitfile`: a rerun test is listed again.
        let run = import(&sample("gotestsum.xml"));
        assert_eq!(
            names(&run),
            [
                "example.com/shop/cart/TestTotal",
                "example.com/shop/cart/TestRace",
                "example.com/shop/cart/TestLegacy",
                "example.com/shop/api/TestLogin",
                "example.com/shop/api/TestLogin/bad_password",
            ]
        );
        let race = test(&run, "example.com/shop/cart/TestRace");
        assert_eq!(race.status, Flaky, "failed, then passed on the rerun");
        assert_eq!(race.message.as_deref(), Some("Failed"));
        assert_eq!(race.duration, Some(Duration::from_millis(200)));
        assert_eq!(
            test(&run, "example.com/shop/cart/TestLegacy")
                .message
                .as_deref(),
            Some("=== RUN   TestLegacy")
        );
        let cart = &run.batches[0];
        assert_eq!(cart.status, Status::Passed);
        assert_eq!(cart.reason, "3 tests passed (1 flaky, 1 skipped)");
        assert_eq!(cart.started, at("2026-05-01T10:00:05Z"));
        // The earliest suite starts the run; both have timestamps, so the
        // run ends with the last of them.
        assert_eq!(run.started, at("2026-05-01T10:00:00Z"));
        assert_eq!(run.ended, at("2026-05-01T10:00:06.5Z"));
        assert_eq!(run.status(), RunStatus::Passed);
    }

    #[test]
    fn pytest_with_rerunfailures() {
        // pytest writes zone-less local timestamps; pytest-rerunfailures
        // lists each attempt.
        let run = import(&sample("pytest.xml"));
        assert_eq!(
            names(&run),
            [
                "pytest/tests.test_api/test_login",
                "pytest/tests.test_api/test_flaky_network",
                "pytest/tests.test_api/test_broken",
                "pytest/tests.test_api/test_db",
                "pytest/tests.test_api/test_windows_paths",
            ]
        );
        assert_eq!(
            outcome(&run, "pytest/tests.test_api/test_flaky_network"),
            (Flaky, Some("ConnectionResetError: peer reset"))
        );
        assert_eq!(
            outcome(&run, "pytest/tests.test_api/test_broken"),
            (Failed, Some("failed 2 times: assert 1 == 2 (first)"))
        );
        assert_eq!(
            test(&run, "pytest/tests.test_api/test_db")
                .message
                .as_deref(),
            Some("failed on setup with \"ConnectionError: db down\"")
        );
        assert_eq!(run.batches[0].reason, "2 of 5 tests failed");
        // Zone-less: taken as UTC.
        assert_eq!(run.started, at("2026-05-01T12:30:00.250Z"));
        assert_eq!(run.ended, at("2026-05-01T12:30:00.662Z"));
    }

    #[test]
    fn nextest_with_retries() {
        let run = import(&sample("nextest.xml"));
        assert_eq!(
            names(&run),
            [
                "shop/cart::tests::discount",
                "shop/cart::tests::total",
                "shop/cart::tests::empty",
                "shop::bin/shopd/serves",
            ]
        );
        assert_eq!(
            outcome(&run, "shop/cart::tests::discount"),
            (
                Failed,
                Some(
                    "failed 2 times: thread 'cart::tests::discount' panicked at src/cart.rs:88:9:"
                )
            )
        );
        assert_eq!(
            outcome(&run, "shop/cart::tests::total"),
            (Flaky, Some("test failure with exit code 101"))
        );
        // The report's timestamp (with its zone) starts the run and its
        // suites, which have none; they ran one after another.
        assert_eq!(run.started, at("2026-05-01T10:00:00Z"));
        assert_eq!(run.batches[1].started, run.started);
        assert_eq!(run.batches[0].duration, Duration::from_millis(323));
        assert_eq!(run.ended, at("2026-05-01T10:00:00.373Z"));
    }

    /// warden's own report, written by its JUnit writer, reads back under
    /// the names `warden run` records.
    #[test]
    fn wardens_own_junit() {
        use crate::outcome::Attempt;
        use crate::parsers::TestResult;
        use crate::phase::Phase;
        use crate::report::JunitWriter;
        use crate::report::test_support::outcome;
        use crate::status::Status;
        use crate::status::TestStatus;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        let mut setup = outcome("prepare", Status::Passed, "exit code 0");
        setup.phase = Phase::Setup;
        let build = outcome("build", Status::Passed, "exit code 0");
        let mut net = outcome("net", Status::Flaky, "passed on attempt 2");
        net.kind = Some("fv".into());
        net.retried.push(Attempt {
            status: Status::Failed,
            reason: "exit code 1".into(),
            duration: Duration::from_secs(1),
            log: dir.path().join("net.attempt-1.log"),
            failed_tests: Vec::new(),
        });
        let timeout = outcome("vm", Status::TimedOut, "timed out after 5m");
        let mut unit = outcome("unit", Status::Failed, "1 test failed");
        let result = |path: &[&str], status| TestResult {
            path: path.iter().map(|s| s.to_string()).collect(),
            status,
            duration: Some(Duration::from_millis(5)),
            output: String::new(),
            message: None,
        };
        unit.tests = vec![
            result(&["parse", "empty"], TestStatus::Passed),
            result(&["parse", "nested"], TestStatus::Failed),
            result(&["slow"], TestStatus::Skipped(Some("too slow".into()))),
        ];
        let mut crashed = outcome("kernel", Status::Crashed, "killed by SIGSEGV");
        crashed.tests = vec![result(&["boot"], TestStatus::Passed)];
        let mut writer = JunitWriter::new(path.clone());
        writer
            .record_many([&setup, &build, &net, &timeout, &unit, &crashed])
            .unwrap();

        let run = ImportedRun::new(vec![read_file(&path).unwrap()], None, None);
        let suites: Vec<&str> = run.batches.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(suites, ["setup", "warden", "unit", "kernel"]);
        assert_eq!(
            names(&run),
            [
                "prepare",
                "build",
                "net",
                "vm",
                "unit/parse/empty",
                "unit/parse/nested",
                "unit/slow",
                "kernel/boot",
                // The batch itself, failed outside its tests.
                "kernel",
            ]
        );
        assert_eq!(test(&run, "net").status, Flaky);
        assert_eq!(test(&run, "vm").status, Failed);
        assert_eq!(
            test(&run, "vm").message.as_deref(),
            Some("timed out after 5m")
        );
        assert_eq!(test(&run, "unit/parse/nested").status, Failed);
        assert_eq!(test(&run, "unit/slow").status, Skipped(None));
        assert_eq!(test(&run, "kernel").status, Failed);
        assert_eq!(
            run.started,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );

        // What `warden run` records of the same outcomes: the same names
        // and statuses; the import adds the setup step and the crashed
        // batch's own testcase, which the recorder keeps as batches only.
        let native: Vec<TestRecord> = [&setup, &build, &net, &timeout, &unit, &crashed]
            .into_iter()
            .filter_map(crate::history::recorder::batch_record)
            .flat_map(|b| b.tests)
            .collect();
        for t in &native {
            assert_eq!(test(&run, &t.name).status, t.status, "{}", t.name);
        }
        let mut extra: Vec<&str> = names(&run)
            .into_iter()
            .filter(|n| !native.iter().any(|t| t.name == *n))
            .collect();
        extra.sort_unstable();
        assert_eq!(extra, ["kernel", "prepare"]);
    }

    #[test]
    fn nested_suites_and_loose_cases() {
        // PHPUnit nests suites; the outer ones only hold suites.
        let run = import(
            r#"<testsuites>
  <testsuite name="Project" tests="3" time="3.0">
    <testsuite name="App\Tests\CartTest" file="tests/CartTest.php" tests="2" time="1.0">
      <testcase name="testTotal" class="App\Tests\CartTest" classname="App.Tests.CartTest" time="0.5"/>
      <testsuite name="App\Tests\CartTest::testDiscount" tests="1">
        <testcase name="testDiscount with data set #0" classname="App.Tests.CartTest" time="0.25"/>
        <testcase name="testDiscount with data set #1" time="0.25"><failure>bad discount
more</failure></testcase>
      </testsuite>
    </testsuite>
    <testsuite name="App\Tests\EmptyTest" tests="0" time="0"/>
  </testsuite>
</testsuites>"#,
        );
        let suites: Vec<(&str, usize)> = run
            .batches
            .iter()
            .map(|b| (b.name.as_str(), b.tests.len()))
            .collect();
        assert_eq!(
            suites,
            [
                ("App\\Tests\\CartTest::testDiscount", 2),
                ("App\\Tests\\CartTest", 1),
                ("App\\Tests\\EmptyTest", 0),
            ]
        );
        assert_eq!(
            test(
                &run,
                "App\\Tests\\CartTest::testDiscount/testDiscount with data set #1"
            )
            .message
            .as_deref(),
            Some("bad discount")
        );
        assert_eq!(run.batches[0].duration, Duration::from_millis(500));
        assert_eq!(run.batches[2].reason, "no tests");
        // Only the outermost suite's time counts for the run.
        assert_eq!(
            run.ended.duration_since(run.started).unwrap(),
            Duration::from_secs(3)
        );

        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "loose.xml",
            r#"<testcase name="alone" time="1"/>"#,
        );
        let run = ImportedRun::new(vec![read_file(&path).unwrap()], None, None);
        assert_eq!(names(&run), ["loose/alone"]);
    }

    #[test]
    fn files_of_one_run_keep_namesakes_apart() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(
            dir.path(),
            "attempt-1.xml",
            r#"<testsuite name="s" timestamp="2026-05-02T08:00:00"><testcase classname="c" name="a"><failure message="boom"/></testcase><testcase classname="c" name="b"/></testsuite>"#,
        );
        let second = write(
            dir.path(),
            "attempt-2.xml",
            r#"<testsuite name="s" timestamp="2026-05-02T08:10:00"><testcase classname="c" name="a" time="2"/></testsuite>"#,
        );
        let files = read_files(&[first.clone(), second.clone()]).unwrap();
        let run = ImportedRun::new(files, None, None);
        assert_eq!(run.files, [first.clone(), second.clone()]);
        // Another file's test of the same name is another test (two bats
        // files with a same-named test), not a rerun: never merged.
        assert_eq!(names(&run), ["s/c/a", "s/c/b", "s/c/a #2"]);
        assert_eq!(test(&run, "s/c/a").status, Failed);
        assert_eq!(test(&run, "s/c/a #2").status, Passed);
        // Suites of one name are one batch.
        assert_eq!(run.batches.len(), 1);
        assert_eq!(run.batches[0].duration, Duration::from_secs(602));
        assert_eq!(run.counts.total(), 3);
        assert_eq!(run.started, at("2026-05-02T08:00:00Z"));

        // --at wins; suites keep their own timestamps.
        let when = at("2026-06-01T00:00:00Z");
        let run = ImportedRun::new(read_files(&[first, second]).unwrap(), Some(when), None);
        assert_eq!(run.started, when);
        assert_eq!(run.batches[0].started, at("2026-05-02T08:00:00Z"));
        assert!(run.ended >= run.started);
    }

    #[test]
    fn no_timestamp_means_the_files_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "r.xml",
            r#"<testsuite name="s" time="2.5"><testcase classname="c" name="a"/></testsuite>"#,
        );
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let run = ImportedRun::new(vec![read_file(&path).unwrap()], None, None);
        assert_eq!(names(&run), ["s/c/a"]);
        assert_eq!(run.started, mtime);
        assert_eq!(run.batches[0].started, mtime);
        assert_eq!(run.ended, mtime + Duration::from_millis(2500));
    }

    #[test]
    fn bad_files_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(dir.path(), "ok.xml", "<testsuite name=\"s\"/>");
        let bad = write(
            dir.path(),
            "bad.xml",
            "<testsuite name=\"s\">\n  <testcase name=\"a\">\n    <failure>x</wrong>\n",
        );
        let e = read_files(&[ok.clone(), bad.clone()]).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with(&format!("{}:3:", bad.display())), "{text}");
        assert!(text.contains("malformed JUnit XML"), "{text}");

        let cut = write(dir.path(), "cut.xml", "<testsuites><testsuite name=\"s\">");
        let e = read_file(&cut).unwrap_err().to_string();
        assert!(
            e.contains("cut.xml: not JUnit XML: it ends inside an element"),
            "{e}"
        );
        let html = write(dir.path(), "page.xml", "<html><body/></html>");
        let e = read_file(&html).unwrap_err().to_string();
        assert!(e.ends_with("no <testsuite> or <testsuites> element"), "{e}");
        let missing = dir.path().join("missing.xml");
        let e = read_files(&[ok, missing.clone(), bad]).unwrap_err();
        assert!(
            matches!(&e, ImportError::Read { path, .. } if *path == missing),
            "{e}"
        );
    }

    #[test]
    fn bytes_read_as_a_file_name_the_line_and_column() {
        let xml = b"<testsuite name=\"s\">\n  <testcase name=\"t\" time=\"1e19\"/>\n</testsuite>\n";
        let e = read_bytes(Path::new("mem.xml"), xml).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mem.xml:2:3: time=\"1e19\" is not a duration of 0 to 31622400 seconds"
        );
        let file = read_bytes(
            Path::new("mem.xml"),
            b"<testsuite name=\"s\"><testcase name=\"t\" time=\"2\"/></testsuite>",
        )
        .unwrap();
        assert_eq!(file.suites[0].cases.len(), 1);
    }

    #[test]
    fn line_and_column_of_an_offset() {
        let text = "ab\ncdé\nf".as_bytes();
        let at = |offset: usize| line_column(&text[..offset]).unwrap();
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(4), (2, 2));
        assert_eq!(at(7), (2, 4));
        assert_eq!(at(8), (3, 1));
    }

    #[test]
    fn timestamps() {
        let utc = at("2026-05-01T10:00:00Z");
        for s in [
            "2026-05-01T10:00:00",
            "2026-05-01T10:00:00Z",
            "2026-05-01T12:00:00+02:00",
            "2026-05-01T10:00:00.000000",
            "2026-05-01 10:00:00",
            "2026-05-01 11:00:00+01:00",
            " 2026-05-01T10:00:00.000+00:00 ",
        ] {
            assert_eq!(parse_timestamp(s), Some(utc), "{s}");
        }
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(""), None);
    }

    /// The same file read as a batch `b` of `warden run` would (its files
    /// read after it ended, recorded as the history recorder does) and
    /// imported with `--batch b`: the records of each.
    fn both_paths(file: &Path) -> (Vec<TestRecord>, Vec<TestRecord>) {
        use crate::report::test_support::outcome;
        use crate::status::Status;
        let dir = file.parent().unwrap();
        let pattern = file.file_name().unwrap().to_str().unwrap().to_owned();
        let read =
            crate::parsers::junit::read_junit_files(dir, &[pattern], "b", SystemTime::UNIX_EPOCH);
        assert_eq!(read.problems, Vec::<String>::new(), "{}", file.display());
        let mut o = outcome("b", Status::Failed, "exit code 1");
        o.tests = read.tests;
        let native = crate::history::recorder::batch_record(&o).unwrap().tests;
        let run = ImportedRun::new(vec![read_file(file).unwrap()], None, Some("b"));
        assert!(run.batches.iter().all(|b| b.name == "b"));
        let imported = run.batches.into_iter().flat_map(|b| b.tests).collect();
        (native, imported)
    }

    /// Two cases whose paths join to one name (`a` + `b/c`, `a/b` + `c`):
    /// one result, the worst, both ways.
    #[test]
    fn a_name_twice_is_stored_once_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "twice.xml",
            r#"<testsuite name="s">
  <testcase classname="a/b" name="c"/>
  <testcase classname="a" name="b/c"><failure message="boom"/></testcase>
  <testcase classname="a" name="d"/>
</testsuite>"#,
        );
        let (native, imported) = both_paths(&path);
        assert_eq!(native, imported);
        let got: Vec<(&str, TestStatus, Option<&str>)> = imported
            .iter()
            .map(|t| (t.name.as_str(), t.status.clone(), t.message.as_deref()))
            .collect();
        assert_eq!(
            got,
            [("b/a/b/c", Failed, Some("boom")), ("b/a/d", Passed, None)]
        );
    }

    /// Every sample but warden's own (whose batches are its own) gives
    /// the same names, statuses, messages and durations both ways.
    #[test]
    fn warden_run_and_import_agree() {
        for name in [
            "surefire.xml",
            "gotestsum.xml",
            "pytest.xml",
            "nextest.xml",
            "names.xml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/junit")
                .join(name);
            let (native, imported) = both_paths(&path);
            assert_eq!(native, imported, "{name}");
            assert!(!native.is_empty());
        }
    }

    /// Each JUnit file of tests/fixtures/real/<suite>/ with an
    /// `<stem>.expected.tsv` (`name<TAB>status`, from the runner's own
    /// report): read as a batch would, test by test as expected; imported,
    /// the same names and statuses (an error recorded as failed). Returns
    /// how many files were checked.
    fn check_real(suite: &str) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real")
            .join(suite);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let mut checked = 0;
        let mut xmls: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        xmls.sort();
        for xml in xmls {
            let stem = xml.file_stem().unwrap().to_str().unwrap();
            let Ok(tsv) = std::fs::read_to_string(dir.join(format!("{stem}.expected.tsv"))) else {
                continue;
            };
            let want: Vec<(String, String)> = tsv
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let (n, s) = l.rsplit_once('\t').unwrap();
                    (n.to_owned(), s.to_owned())
                })
                .collect();
            let read = crate::parsers::junit::read_junit_files(
                &dir,
                &[format!("{stem}.xml")],
                "b",
                SystemTime::UNIX_EPOCH,
            );
            assert_eq!(read.problems, Vec::<String>::new(), "{}", xml.display());
            let got: Vec<(String, String)> = read
                .tests
                .iter()
                // The fixtures name a test `classname::name`.
                .map(|t| (t.path.join("::"), t.status.to_string()))
                .collect();
            assert_eq!(got, want, "{}", xml.display());
            let (native, imported) = both_paths(&xml);
            assert_eq!(native, imported, "{}", xml.display());
            assert_eq!(imported.len(), want.len(), "{}", xml.display());
            checked += 1;
        }
        checked
    }

    /// Recorded pytest (three versions of pytest-rerunfailures) and
    /// cargo-nextest (retries = 2) runs.
    #[test]
    fn real_fixtures_agree_with_their_runners() {
        assert_eq!(check_real("pytest"), 4);
        assert_eq!(check_real("nextest"), 2);
    }

    #[test]
    fn a_batch_holds_every_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "report.xml", &sample("gotestsum.xml"));
        let run = ImportedRun::new(vec![read_file(&path).unwrap()], None, Some("go"));
        assert_eq!(run.batches.len(), 1);
        let b = &run.batches[0];
        assert_eq!(b.name, "go");
        assert_eq!(b.reason, "5 tests passed (1 flaky, 1 skipped)");
        // Both suites are timestamped: 10:00:00 to 10:00:06.5.
        assert_eq!(b.started, at("2026-05-01T10:00:00Z"));
        assert_eq!(b.duration, Duration::from_millis(6500));
        assert_eq!(
            names(&run),
            [
                "go/example.com/shop/cart/TestTotal",
                "go/example.com/shop/cart/TestRace",
                "go/example.com/shop/cart/TestLegacy",
                "go/example.com/shop/api/TestLogin",
                "go/example.com/shop/api/TestLogin/bad_password",
            ]
        );
        // warden's own report keeps its batches.
        let path = write(dir.path(), "warden.xml", &sample("warden.xml"));
        let run = ImportedRun::new(vec![read_file(&path).unwrap()], None, Some("go"));
        assert!(names(&run).contains(&"unit/parse/nested"));
    }

    #[test]
    fn times_out_of_range_import_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for (value, column) in [("1e19", 3), ("-1", 3), ("NaN", 3), ("inf", 3)] {
            let path = write(
                dir.path(),
                "t.xml",
                &format!(
                    "<testsuite name=\"s\">\n  <testcase classname=\"c\" name=\"ok\" time=\"1\"/>\n  <testcase classname=\"c\" name=\"t\" time=\"{value}\"/>\n</testsuite>"
                ),
            );
            let e = read_file(&path).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "{}:3:{column}: time=\"{value}\" is not a duration of 0 to 31622400 seconds",
                    path.display()
                )
            );
        }
        let path = write(
            dir.path(),
            "suite.xml",
            "<testsuites><testsuite name=\"s\" time=\"1e400\"/></testsuites>",
        );
        let e = read_file(&path).unwrap_err().to_string();
        assert!(e.contains("suite.xml:1:13: time=\"1e400\""), "{e}");
    }

    #[test]
    fn huge_texts_are_not_kept() {
        let mut xml = String::from(
            "<testsuite name=\"s\"><testcase classname=\"c\" name=\"big\"><system-out>",
        );
        for i in 0..20_000 {
            xml.push_str(&format!("line {i} &amp; more\n"));
        }
        xml.push_str("</system-out><failure>");
        xml.push_str(&"\n".repeat(5000));
        xml.push_str(&"é".repeat(2000));
        xml.push_str("</failure></testcase></testsuite>");
        let run = import(&xml);
        let m = test(&run, "s/c/big").message.clone().unwrap();
        assert!(m.len() <= crate::text::MAX_MESSAGE && m.starts_with("éé"));
    }
}
