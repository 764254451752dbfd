//! The testcases of a JUnit document, as the tests look at them, read
//! with quick-xml (the library's XML reader) into a model of their own:
//! text exactly as written (quick-junit, which the library's unit tests
//! use, trims `system-out` and rejects character references in text).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Success,
    Failure,
    Error,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub classname: String,
    pub kind: Kind,
    /// `type` of the `<failure>`/`<error>` element.
    pub ty: Option<String>,
    pub message: Option<String>,
    pub system_out: Option<String>,
    pub system_err: Option<String>,
}

impl TestCase {
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    pub fn out(&self) -> &str {
        self.system_out.as_deref().unwrap_or("")
    }

    pub fn err(&self) -> &str {
        self.system_err.as_deref().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_status(&self, kind: Kind, ty: Option<&str>) -> &Self {
        assert_eq!(
            (self.kind, self.ty.as_deref()),
            (kind, ty),
            "testcase {self:#?}"
        );
        self
    }
}

fn status_of(name: &[u8], a: &BTreeMap<String, String>, case: &mut TestCase) {
    let kind = match name {
        b"failure" => Kind::Failure,
        b"error" => Kind::Error,
        b"skipped" => Kind::Skipped,
        _ => return,
    };
    case.kind = kind;
    case.ty = a.get("type").cloned();
    case.message = a.get("message").cloned();
}

/// The first testcase named `name`.
#[track_caller]
pub fn named<'a>(cases: &'a [TestCase], name: &str) -> &'a TestCase {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no testcase {name:?} in {cases:#?}"))
}

/// The testcases of a JUnit document, in document order.
pub fn parse_junit(xml: &str) -> Result<Vec<TestCase>, String> {
    use quick_xml::events::{BytesStart, Event};

    fn attrs(e: &BytesStart) -> Result<BTreeMap<String, String>, String> {
        let mut map = BTreeMap::new();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?
                .into_owned();
            map.insert(key, value);
        }
        Ok(map)
    }

    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut cases = Vec::new();
    let mut current: Option<TestCase> = None;
    // The system-out/system-err element we are in, and its text so far.
    let mut text_of: Option<(String, String)> = None;
    let mut depth = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("at {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == b"testcase" => {
                let empty = matches!(ev, Event::Empty(_));
                let a = attrs(e)?;
                let case = TestCase {
                    name: a.get("name").cloned().unwrap_or_default(),
                    classname: a.get("classname").cloned().unwrap_or_default(),
                    kind: Kind::Success,
                    ty: None,
                    message: None,
                    system_out: None,
                    system_err: None,
                };
                if empty {
                    cases.push(case);
                } else {
                    depth += 1;
                    current = Some(case);
                }
            }
            Event::Start(e) => {
                depth += 1;
                if let Some(case) = current.as_mut() {
                    let name = e.name().as_ref().to_vec();
                    status_of(&name, &attrs(&e)?, case);
                    if name == b"system-out" || name == b"system-err" {
                        text_of =
                            Some((String::from_utf8_lossy(&name).into_owned(), String::new()));
                    }
                }
            }
            Event::Empty(e) => {
                if let Some(case) = current.as_mut() {
                    let name = e.name().as_ref().to_vec();
                    status_of(&name, &attrs(&e)?, case);
                    if name == b"system-out" {
                        case.system_out = Some(String::new());
                    } else if name == b"system-err" {
                        case.system_err = Some(String::new());
                    }
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.name().as_ref().to_vec();
                if name == b"testcase" {
                    cases.extend(current.take());
                } else if let (Some((el, text)), Some(case)) = (&text_of, current.as_mut())
                    && el.as_bytes() == name.as_slice()
                {
                    if name == b"system-out" {
                        case.system_out = Some(text.clone());
                    } else {
                        case.system_err = Some(text.clone());
                    }
                    text_of = None;
                }
            }
            Event::Text(t) => {
                if let Some((_, text)) = text_of.as_mut() {
                    text.push_str(&t.xml10_content().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some((_, text)) = text_of.as_mut() {
                    text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text)) = text_of.as_mut() {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                        text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        let v = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?;
                        text.push_str(v);
                    }
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced elements".into());
    }
    Ok(cases)
}
