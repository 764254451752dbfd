//! `format = "test-progs"` with `json-summary`: the file test_progs'
//! `--json-summary` writes is read after the batch ends, relative to the
//! batch's cwd, for the failures' messages.

#[macro_use]
mod common;

use common::{Kind, Warden, named};

#[test]
fn the_json_summary_gives_failures_their_messages() {
    // What test_progs prints without -v, and the file it writes (only the
    // failed tests, with their logs).
    let script = r#"
printf '%s\n' '#1       align:OK' 'test_netcnt:FAIL:stdout line' '#2       netcnt:FAIL' \
  '' 'All error logs:' '#2       netcnt:FAIL' 'Summary: 1/0 PASSED, 0 SKIPPED, 2 FAILED'
cat > summary.json <<'JSON'
{"success":1,"success_subtest":0,"skipped":0,"failed":2,"results":[
 {"name":"netcnt","number":2,"message":"test_netcnt:FAIL:skel_open unexpected error: -22\n","failed":true,"subtests":[]},
 {"name":"lost","number":3,"message":"test_lost:FAIL:x unexpected x: actual 1 != expected 2\n","failed":true,"subtests":[]}]}
JSON
exit 1
"#;
    let r = Warden::pgroup()
        .shell(
            "bpf",
            script,
            "format = \"test-progs\"\njson-summary = \"summary.json\"",
        )
        .run();
    r.assert_code(1);
    let cases = r.junit();
    assert!(cases.iter().all(|c| c.classname == "bpf"), "{cases:#?}");
    named(&cases, "align").assert_status(Kind::Success, None);
    let netcnt = named(&cases, "netcnt");
    netcnt.assert_status(Kind::Failure, Some("failed"));
    assert_eq!(
        netcnt.message(),
        "test_netcnt:FAIL:skel_open unexpected error: -22"
    );
    let lost = named(&cases, "lost");
    lost.assert_status(Kind::Failure, Some("failed"));
    assert_eq!(
        lost.message(),
        "test_lost:FAIL:x unexpected x: actual 1 != expected 2"
    );
}
