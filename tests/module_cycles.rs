//! No cycle between warden's modules (docs/ARCHITECTURE.md, "Dependency
//! direction"): the data flows config → plan → scheduler → supervisor →
//! outcome → events → reporters, and the imports must follow it.
//!
//! The check reads every file of the library under `src/` as text (no
//! compiler involved, so it runs in a blink and needs no extra crate):
//!
//! - the modules are the files reachable from `src/lib.rs` through `mod`
//!   declarations; code under `#[cfg(test)]` is left out (a test may reach
//!   across the pipeline to build its input; it is not part of the shape);
//! - a module depends on another where it names it: a `use` of a `crate::`,
//!   `super::`, `self::` or child-module path, or such a path inline in its
//!   code; comments and string literals are skipped;
//! - `mod` declarations and `pub use` re-exports are structure, not
//!   dependencies: a path through a re-export counts towards the module
//!   that defines the item, so a parent that only declares and re-exports
//!   its children depends on none of them;
//! - the nodes are the top-level modules and their direct submodules
//!   (`plan`, `supervisor`, `config::schema`, `report::live`); a deeper
//!   file counts as its depth-2 ancestor (`supervisor::containment::cgroup`
//!   is `supervisor::containment`). A parent's own file (`mod.rs`) is a
//!   node of its own, so a parent that uses its children while they use it
//!   is a cycle too: shared types go below, into a child of their own.
//!
//! Any cycle among the nodes fails the test, naming each edge and where it
//! comes from.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

/// How many path segments make a node: top-level modules and their direct
/// submodules.
const DEPTH: usize = 2;

#[test]
fn no_module_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&src, &src, &mut files);
    let graph = Graph::build(&files);
    assert!(
        graph.edges.len() > 50,
        "the check found only {} edges: it is not reading src/ right",
        graph.edges.len()
    );
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "module cycles (see tests/module_cycles.rs and docs/ARCHITECTURE.md):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_check_sees_cycles_through_paths_uses_and_parents() {
    let tree = |files: &[(&str, &str)]| -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    };
    // A plain cycle through an inline path and a `use`, past a comment
    // and a string that name the other way.
    let files = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;"),
        ("a.rs", "fn f() { crate::b::g(); }"),
        ("b.rs", "use crate::c::{self, X};\n"),
        (
            "c.rs",
            "// crate::d::x\nconst S: &str = \"crate::\\\"d::y\";\nconst Q: char = '\\'';\n\
             const R: &str = r#\"crate::d::z\"#;\n/* crate::d::w */ use super::a::f;",
        ),
        ("d.rs", "use crate::c::S;"),
    ]);
    let graph = Graph::build(&files);
    assert!(!graph.edges.contains_key(&("c".into(), "d".into())));
    let cycles = graph.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].contains("a -> b"), "{}", cycles[0]);
    assert!(
        cycles[0].contains("c -> a (src/c.rs: use super::a::f)"),
        "{}",
        cycles[0]
    );

    // Re-exports are structure; a parent using a child that uses it is a cycle.
    let files = tree(&[
        ("lib.rs", "pub mod p;\npub mod q;"),
        (
            "p/mod.rs",
            "mod kid;\npub use kid::Thing;\npub struct Shared;",
        ),
        ("p/kid.rs", "use super::Shared;\npub struct Thing;"),
        ("q.rs", "use crate::p::Thing;"),
    ]);
    let graph = Graph::build(&files);
    assert!(graph.cycles().is_empty(), "{:?}", graph.cycles());
    assert!(graph.edges.contains_key(&("q".into(), "p::kid".into())));
    let files = tree(&[
        ("lib.rs", "pub mod p;"),
        (
            "p/mod.rs",
            "mod kid;\npub struct Shared;\nfn f() { kid::g(); }",
        ),
        ("p/kid.rs", "pub fn g() {}\nuse super::Shared;"),
    ]);
    assert_eq!(Graph::build(&files).cycles().len(), 1);
    // A re-export the parent uses itself is a use.
    let files = tree(&[
        ("lib.rs", "pub mod p;"),
        (
            "p/mod.rs",
            "mod kid;\npub use kid::Thing;\npub struct Shared(Thing);",
        ),
        ("p/kid.rs", "pub struct Thing;\nuse super::Shared;"),
    ]);
    assert_eq!(Graph::build(&files).cycles().len(), 1);

    // `+ use<>` (precise capturing) is no `use` item, and an odd token in a
    // brace group never stalls the reader.
    let files = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;"),
        (
            "a.rs",
            "fn f() -> impl Fn() + use<> { crate::b::g }\nuse crate::b::{(};",
        ),
        ("b.rs", "pub fn g() {}"),
    ]);
    let graph = Graph::build(&files);
    assert!(graph.edges.contains_key(&("a".into(), "b".into())));

    // Test code and deeper files: left out, and folded.
    let files = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;"),
        (
            "a/mod.rs",
            "pub mod deep;\n#[cfg(test)]\nmod tests { use crate::b::X; }",
        ),
        ("a/deep/mod.rs", "pub mod deeper;"),
        ("a/deep/deeper.rs", "use crate::b::Y;"),
        (
            "b.rs",
            "#[cfg(test)]\n#[allow(unused)]\nuse crate::a::Z;\npub struct X; pub struct Y;",
        ),
    ]);
    let graph = Graph::build(&files);
    assert!(graph.cycles().is_empty());
    assert!(graph.edges.contains_key(&("a::deep".into(), "b".into())));
}

/// Every `.rs` file under `dir`, by its path relative to `root`.
fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
}

type ModPath = Vec<String>;

/// One module's file, reduced to what names other modules.
struct Module {
    file: String,
    children: BTreeSet<String>,
    /// `use` paths (not `pub use`), each with the source text it came from.
    uses: Vec<(ModPath, String)>,
    /// Paths in the code outside `use` items.
    inline: Vec<(ModPath, String)>,
    /// `pub use` items: the name they give, and the path they name.
    reexports: Vec<(String, ModPath)>,
}

struct Graph {
    /// (from node, to node) → where one such reference is.
    edges: BTreeMap<(String, String), String>,
}

impl Graph {
    fn build(files: &BTreeMap<String, String>) -> Graph {
        let modules = modules(files);
        // Re-exports, resolved to absolute paths.
        let mut reexports: HashMap<(ModPath, String), ModPath> = HashMap::new();
        for (path, m) in &modules {
            for (name, target) in &m.reexports {
                if let Some(abs) = absolute(path, &m.children, target) {
                    reexports.insert((path.clone(), name.clone()), abs);
                }
            }
        }
        let mut edges = BTreeMap::new();
        for (path, m) in &modules {
            for (target, text) in m.uses.iter().chain(&m.inline) {
                let Some(abs) = absolute(path, &m.children, target) else {
                    continue;
                };
                let to = defining_module(&modules, &reexports, abs);
                let (a, b) = (node(path), node(&to));
                if a != b && !b.is_empty() {
                    edges
                        .entry((a, b))
                        .or_insert_with(|| format!("src/{}: {text}", m.file));
                }
            }
        }
        Graph { edges }
    }

    /// Each cycle as `a -> b (where) -> ... -> a`, one per strongly
    /// connected group of nodes.
    fn cycles(&self) -> Vec<String> {
        let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (a, b) in self.edges.keys() {
            next.entry(a).or_default().push(b);
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        for &start in next.keys() {
            if seen.contains(start) {
                continue;
            }
            // The shortest way back to `start`, if any (breadth first).
            let mut from: HashMap<&str, &str> = HashMap::new();
            let mut queue = VecDeque::from([start]);
            let mut closed = None;
            while let Some(n) = queue.pop_front() {
                for &m in next.get(n).into_iter().flatten() {
                    if m == start {
                        closed = Some(n);
                        break;
                    }
                    if !from.contains_key(m) {
                        from.insert(m, n);
                        queue.push_back(m);
                    }
                }
                if closed.is_some() {
                    break;
                }
            }
            let Some(mut last) = closed else { continue };
            let mut ring = vec![start];
            while last != start {
                ring.push(last);
                last = from[last];
            }
            ring[1..].reverse();
            ring.push(start);
            seen.extend(ring.iter().copied());
            let steps: Vec<String> = ring
                .windows(2)
                .map(|w| {
                    let why = &self.edges[&(w[0].to_owned(), w[1].to_owned())];
                    format!("  {} -> {} ({why})", w[0], w[1])
                })
                .collect();
            out.push(format!("cycle through {start}:\n{}", steps.join("\n")));
        }
        out
    }
}

/// The node a module counts as.
fn node(path: &[String]) -> String {
    path[..path.len().min(DEPTH)].join("::")
}

/// The modules reachable from `lib.rs` by `mod` declarations outside test code.
fn modules(files: &BTreeMap<String, String>) -> BTreeMap<ModPath, Module> {
    let mut out = BTreeMap::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let (file, text) = if path.is_empty() {
            ("lib.rs".to_owned(), &files["lib.rs"])
        } else {
            let base = path.join("/");
            let flat = format!("{base}.rs");
            let dir = format!("{base}/mod.rs");
            match (files.get(&flat), files.get(&dir)) {
                (Some(t), _) => (flat, t),
                (None, Some(t)) => (dir, t),
                (None, None) => panic!("module {} has no file", path.join("::")),
            }
        };
        let m = read_module(&file, text);
        for c in &m.children {
            let mut child = path.clone();
            child.push(c.clone());
            todo.push(child);
        }
        out.insert(path, m);
    }
    out
}

/// `target` (as written in module `at`) as a path from the crate root;
/// `None` for paths outside the crate (`std::`, other crates, locals).
fn absolute(at: &[String], children: &BTreeSet<String>, target: &[String]) -> Option<ModPath> {
    let (mut base, rest): (ModPath, &[String]) = match target.first()?.as_str() {
        "crate" | "$crate" => (Vec::new(), &target[1..]),
        "self" => (at.to_vec(), &target[1..]),
        "super" => {
            let ups = target.iter().take_while(|s| *s == "super").count();
            (at[..at.len().checked_sub(ups)?].to_vec(), &target[ups..])
        }
        first if children.contains(first) => (at.to_vec(), target),
        _ => return None,
    };
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// The module that defines what `path` names, through re-exports.
fn defining_module(
    modules: &BTreeMap<ModPath, Module>,
    reexports: &HashMap<(ModPath, String), ModPath>,
    mut path: ModPath,
) -> ModPath {
    for _ in 0..32 {
        let mut module = path.clone();
        while !modules.contains_key(&module) {
            module.pop();
        }
        let Some(name) = path.get(module.len()) else {
            return module;
        };
        match reexports.get(&(module.clone(), name.clone())) {
            Some(target) => {
                let mut next = target.clone();
                next.extend(path[module.len() + 1..].iter().cloned());
                path = next;
            }
            None => return module,
        }
    }
    panic!("re-exports go round in circles at {}", path.join("::"))
}

fn read_module(file: &str, text: &str) -> Module {
    let code = drop_test_items(&strip_comments_and_literals(text));
    let tokens = tokenize(&code);
    let mut m = Module {
        file: file.to_owned(),
        children: BTreeSet::new(),
        uses: Vec::new(),
        inline: Vec::new(),
        reexports: Vec::new(),
    };
    // Names used outside `use` items: a re-exported name the file also
    // uses itself is a dependency as well as structure.
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut in_use = false;
    for (k, t) in tokens.iter().enumerate() {
        let precise_capture = tokens.get(k + 1).is_some_and(|n| n == "<");
        match t.as_str() {
            "use" if !precise_capture => in_use = true,
            ";" => in_use = false,
            t if !in_use && is_ident(t) => {
                used.insert(t);
            }
            _ => {}
        }
    }
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        if t == "mod" && tokens.get(i + 2).is_some_and(|t| t == ";") {
            m.children.insert(tokens[i + 1].clone());
            i += 3;
        } else if t == "mod" && tokens.get(i + 2).is_some_and(|t| t == "{") {
            panic!(
                "src/{file}: inline module `{}` outside test code: the cycle check reads a \
                 module per file; give it a file",
                tokens[i + 1]
            );
        } else if t == "use" && tokens.get(i + 1).is_some_and(|t| t == "<") {
            // `impl Trait + use<'a, T>`: precise capturing, not an item.
            i += 1;
        } else if t == "use" {
            let public = is_public(&tokens[..i]);
            let end = tokens[i..]
                .iter()
                .position(|t| t == ";")
                .map_or(tokens.len(), |e| i + e);
            for (path, alias) in use_tree(&tokens[i + 1..end]) {
                if public {
                    let name = alias.or_else(|| path.last().cloned()).unwrap_or_default();
                    if used.contains(name.as_str()) {
                        let text = format!("pub use {} (and uses it)", path.join("::"));
                        m.uses.push((path.clone(), text));
                    }
                    m.reexports.push((name, path));
                } else {
                    let text = format!("use {}", path.join("::"));
                    m.uses.push((path, text));
                }
            }
            i = end + 1;
        } else if is_ident(t) && (i == 0 || tokens[i - 1] != "::") {
            let mut path = vec![t.to_owned()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            if path.len() > 1 {
                let text = path.join("::");
                m.inline.push((path, text));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    m
}

/// Whether the tokens before an item end in `pub` or `pub(...)`.
fn is_public(before: &[String]) -> bool {
    match before.last().map(String::as_str) {
        Some("pub") => true,
        Some(")") => {
            let open = before.iter().rposition(|t| t == "(");
            open.is_some_and(|o| o > 0 && before[o - 1] == "pub")
        }
        _ => false,
    }
}

/// The paths a `use` tree names, each with its `as` alias.
fn use_tree(tokens: &[String]) -> Vec<(ModPath, Option<String>)> {
    fn walk(
        tokens: &[String],
        i: &mut usize,
        prefix: &ModPath,
        out: &mut Vec<(ModPath, Option<String>)>,
    ) {
        let mut path = prefix.clone();
        loop {
            match tokens.get(*i).map(String::as_str) {
                Some("::") => *i += 1,
                Some("{") => {
                    *i += 1;
                    while tokens.get(*i).is_some_and(|t| t != "}") {
                        let before = *i;
                        walk(tokens, i, &path, out);
                        if tokens.get(*i).is_some_and(|t| t == ",") || *i == before {
                            // Past the `,`, or past a token no use tree
                            // holds: never loop in place.
                            *i += 1;
                        }
                    }
                    *i += 1;
                    return;
                }
                Some("*") => {
                    *i += 1;
                    out.push((path, Some("*".to_owned())));
                    return;
                }
                Some("as") => {
                    out.push((path, tokens.get(*i + 1).cloned()));
                    *i += 2;
                    return;
                }
                Some(t) if is_ident(t) => {
                    path.push(t.to_owned());
                    *i += 1;
                }
                _ => {
                    out.push((path, None));
                    return;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        walk(tokens, &mut i, &Vec::new(), &mut out);
        // Past the `,` (or whatever stopped the walk).
        i += 1;
    }
    // A leading `::` means another crate.
    out.retain(|(p, _)| !p.is_empty());
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
}

/// Identifiers (with a leading `$` for `$crate`), `::`, and single
/// punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' || (c == '$' && chars.get(i + 1) == Some(&'c')) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// The code without comments, and with every string and character literal
/// emptied (`""`, `' '`); lifetimes are kept.
fn strip_comments_and_literals(src: &str) -> String {
    let s: Vec<char> = src.chars().collect();
    let at = |i: usize, what: &str| {
        what.chars()
            .enumerate()
            .all(|(k, c)| s.get(i + k) == Some(&c))
    };
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < s.len() {
        let ident_before = i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_');
        if at(i, "//") {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < s.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if !ident_before && raw_string_start(&s, i).is_some() {
            let (open, hashes) = raw_string_start(&s, i).unwrap();
            i += open;
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < s.len() && !at(i, &close) {
                i += 1;
            }
            i += close.chars().count();
            out.push_str("\"\"");
        } else if s[i] == '"' {
            i += 1;
            while i < s.len() && s[i] != '"' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if s[i] == '\'' && s.get(i + 1) == Some(&'\\') {
            // Past the quote, the backslash and the escaped character
            // (which may be a quote itself), then to the closing quote.
            i += 3;
            while i < s.len() && s[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if s[i] == '\'' && s.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br"`, `cr#"`…: how many characters open it, and its `#`s.
fn raw_string_start(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(s.get(j), Some('b') | Some('c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    (s.get(j) == Some(&'"')).then_some((j + 1 - i, hashes))
}

/// The code without the items marked `#[cfg(test)]` (with any attributes
/// after the mark).
fn drop_test_items(code: &str) -> String {
    let s: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == '#' && is_cfg_test(&s, i) {
            i = skip_attribute(&s, i);
            loop {
                let j = skip_whitespace(&s, i);
                if s.get(j) == Some(&'#') {
                    i = skip_attribute(&s, j);
                } else {
                    i = j;
                    break;
                }
            }
            i = skip_item(&s, i);
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn is_cfg_test(s: &[char], i: usize) -> bool {
    let end = s[i..]
        .iter()
        .position(|&c| c == ']')
        .map_or(s.len(), |e| i + e + 1);
    let attr: String = s[i..end].iter().filter(|c| !c.is_whitespace()).collect();
    attr == "#[cfg(test)]"
}

fn skip_whitespace(s: &[char], mut i: usize) -> usize {
    while s.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// Past `#[...]`, brackets balanced.
fn skip_attribute(s: &[char], i: usize) -> usize {
    let mut depth = 0;
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// Past one item: to its `;` outside brackets, or its closing brace (and a
/// `;` right after it).
fn skip_item(s: &[char], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < s.len() {
        match s[i] {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' => depth -= 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let j = skip_whitespace(s, i + 1);
                    return if s.get(j) == Some(&';') { j + 1 } else { i + 1 };
                }
            }
            ';' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}
