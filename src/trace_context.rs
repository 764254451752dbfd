//! The run's place in a distributed trace (W3C Trace Context): its trace
//! id, its own span id and, when warden was started inside a trace (a CI
//! system that sets `TRACEPARENT`), the span it is a child of.
//!
//! It lives apart from the OTLP exporter (`report::otlp`) because two ends
//! of the run need it: the retries hand every attempt of a unit its own
//! `TRACEPARENT` (so tests that trace themselves join the run's trace under
//! that attempt's span), and the exporter later sends that very span. The
//! attempt's span id is derived from (unit, attempt), so neither end has to
//! tell the other anything while the run goes.

use std::hash::{Hash, Hasher};

/// The variable carrying a trace context into a process
/// (`00-<trace-id>-<parent-span-id>-<flags>`).
pub const TRACEPARENT: &str = "TRACEPARENT";

/// A trace id (16 bytes) and the run span's id (8 bytes), never all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The run span.
    pub span_id: [u8; 8],
    /// The span the run span is a child of: from an incoming `TRACEPARENT`.
    pub parent: Option<[u8; 8]>,
}

impl TraceContext {
    /// A new run span: in the trace of `incoming` (a `TRACEPARENT` value)
    /// as its child when that parses, else in a trace of its own.
    pub fn start(incoming: Option<&str>) -> TraceContext {
        let parsed = incoming.and_then(parse_traceparent);
        TraceContext {
            trace_id: parsed.map_or_else(random_trace_id, |(t, _)| t),
            span_id: random_span_id(),
            parent: parsed.map(|(_, s)| s),
        }
    }

    /// The span of a unit's attempt (1-based): the same for the same unit
    /// and attempt within this run, distinct otherwise (a 64-bit hash of
    /// them and this run's ids), never zero nor the run span's.
    pub fn attempt_span(&self, unit: &str, attempt: u32) -> [u8; 8] {
        self.derived(&(unit, attempt))
    }

    /// The span of a test within an attempt (its `index` among the
    /// attempt's tests), like [`attempt_span`](Self::attempt_span).
    pub fn test_span(&self, unit: &str, attempt: u32, index: usize) -> [u8; 8] {
        self.derived(&(unit, attempt, index))
    }

    fn derived(&self, key: &impl Hash) -> [u8; 8] {
        let mut salt = 0u64;
        loop {
            // SipHash with fixed keys: the same within this process, which
            // is all it must be (both ends of the run live here).
            let mut h = std::hash::DefaultHasher::new();
            (self.trace_id, self.span_id, salt).hash(&mut h);
            key.hash(&mut h);
            let id = h.finish().to_be_bytes();
            if id != [0; 8] && id != self.span_id {
                return id;
            }
            salt += 1;
        }
    }

    /// The `TRACEPARENT` value for a child of `span` in this trace
    /// (sampled).
    pub fn traceparent(&self, span: [u8; 8]) -> String {
        format!("00-{}-{}-01", hex(&self.trace_id), hex(&span))
    }
}

/// Lower-case hex, as trace context and OTLP's JSON spell ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The trace id and parent span id of a `TRACEPARENT` value: version
/// `00` (or a later one, read as far as `00` goes), lower-case hex, ids not
/// all zero; `None` when it is not one.
pub fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8])> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; a later version may add more.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if flags.len() != 2 || !is_lower_hex(version) || !is_lower_hex(flags) {
        return None;
    }
    let trace: [u8; 16] = unhex(trace)?;
    let span: [u8; 8] = unhex(span)?;
    (trace != [0; 16] && span != [0; 8]).then_some((trace, span))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn random_trace_id() -> [u8; 16] {
    // A v4 UUID is 122 random bits (the OS's randomness): ample for an id
    // that must only be unique.
    let id = *uuid::Uuid::new_v4().as_bytes();
    if id == [0; 16] { [1; 16] } else { id }
}

fn random_span_id() -> [u8; 8] {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[8..]);
    if id == [0; 8] { [1; 8] } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let ctx = TraceContext::start(None);
        assert_eq!(ctx.parent, None);
        let span = ctx.attempt_span("net", 1);
        let value = ctx.traceparent(span);
        assert_eq!(value.len(), 55);
        assert_eq!(parse_traceparent(&value), Some((ctx.trace_id, span)));
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(parse_traceparent(good).is_some());
        // A later version with more fields is read as far as 00 goes.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_incoming_context_makes_the_run_its_child() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::start(Some(incoming));
        assert_eq!(hex(&ctx.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            ctx.parent.map(|p| hex(&p)).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_ne!(hex(&ctx.span_id), "00f067aa0ba902b7");
        // Garbage is ignored: a trace of its own.
        let own = TraceContext::start(Some("nonsense"));
        assert_eq!(own.parent, None);
    }

    #[test]
    fn attempt_spans_are_stable_and_distinct() {
        let ctx = TraceContext::start(None);
        let a1 = ctx.attempt_span("a", 1);
        assert_eq!(a1, ctx.attempt_span("a", 1));
        let mut seen = std::collections::HashSet::from([ctx.span_id]);
        for unit in ["a", "b", "c"] {
            for attempt in 1..=3 {
                assert!(seen.insert(ctx.attempt_span(unit, attempt)));
                for i in 0..10 {
                    assert!(seen.insert(ctx.test_span(unit, attempt, i)));
                }
            }
        }
        // Another run: other ids.
        assert_ne!(TraceContext::start(None).attempt_span("a", 1), a1);
    }
}
