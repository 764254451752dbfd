//! warden's words in the OpenTelemetry semantic conventions' (CI/CD and
//! test, both "development" status): the attribute names, and each status
//! as the conventions' well-known values say it.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::status::{RunStatus, Status, TestStatus};

pub const PIPELINE_NAME: &str = "cicd.pipeline.name";
pub const PIPELINE_RUN_ID: &str = "cicd.pipeline.run.id";
pub const PIPELINE_RESULT: &str = "cicd.pipeline.result";
pub const PIPELINE_ACTION: &str = "cicd.pipeline.action.name";
pub const TASK_NAME: &str = "cicd.pipeline.task.name";
pub const TASK_RUN_ID: &str = "cicd.pipeline.task.run.id";
pub const TASK_RUN_URL: &str = "cicd.pipeline.task.run.url.full";
pub const TASK_RUN_RESULT: &str = "cicd.pipeline.task.run.result";
pub const TASK_TYPE: &str = "cicd.pipeline.task.type";
pub const SUITE_NAME: &str = "test.suite.name";
pub const SUITE_RUN_STATUS: &str = "test.suite.run.status";
pub const CASE_NAME: &str = "test.case.name";
pub const CASE_RESULT_STATUS: &str = "test.case.result.status";
pub const ERROR_TYPE: &str = "error.type";
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";

/// `cicd.pipeline.run.result` / `cicd.pipeline.task.run.result`:
/// `success`, `failure`, `timeout` (its own timeout or the run deadline),
/// `cancellation` (warden was asked to stop), `skip` (never started).
pub fn task_result(status: Status) -> &'static str {
    match status {
        Status::Passed | Status::Flaky => "success",
        Status::Failed | Status::Crashed | Status::Leaked | Status::Aborted => "failure",
        Status::TimedOut | Status::Deadline => "timeout",
        Status::Interrupted => "cancellation",
        Status::NotRun => "skip",
    }
}

/// `cicd.pipeline.result` for the run.
pub fn pipeline_result(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Passed => "success",
        RunStatus::Failed => "failure",
        RunStatus::Deadline => "timeout",
        RunStatus::Interrupted => "cancellation",
        // Never given to a run that ends (it is the history's word for a
        // run whose warden died).
        RunStatus::Incomplete => "error",
    }
}

/// `test.suite.run.status` for a batch: `success`, `failure`, `timed_out`,
/// `aborted` (a fatal pattern, or stopped by a signal), `skipped`.
pub fn suite_status(status: Status) -> &'static str {
    match status {
        Status::Passed | Status::Flaky => "success",
        Status::Failed | Status::Crashed | Status::Leaked => "failure",
        Status::TimedOut | Status::Deadline => "timed_out",
        Status::Aborted | Status::Interrupted => "aborted",
        Status::NotRun => "skipped",
    }
}

/// `test.case.result.status`: `pass` (a flaky test passed in the end),
/// `fail` (an error too); a skipped test is `skipped`, a value of warden's
/// own, as the conventions allow where no well-known one applies.
pub fn case_status(status: &TestStatus) -> &'static str {
    match status {
        TestStatus::Passed | TestStatus::Flaky => "pass",
        TestStatus::Failed | TestStatus::Error(_) => "fail",
        TestStatus::Skipped(_) => "skipped",
    }
}

/// A string attribute.
pub fn text(key: &str, value: impl Into<String>) -> KeyValue {
    attribute(key, any_value::Value::StringValue(value.into()))
}

/// An integer attribute.
pub fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, any_value::Value::IntValue(value))
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}
