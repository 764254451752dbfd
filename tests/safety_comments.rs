//! Every `unsafe` block in the library says why it is sound: a `// SAFETY:`
//! comment on the lines just above it (or on its own line), as the style
//! rules ask. Read as text; an `unsafe fn`'s contract is its `# Safety`
//! doc section, and the blocks inside it still need their own comment.

use std::path::Path;

/// How many lines of one statement may sit between the comment and the
/// block (`let x =\n    unsafe {`).
const STATEMENT_LINES: usize = 3;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The 1-based lines of `text` that open an `unsafe` block without a
/// `SAFETY` comment above them.
fn uncommented(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let opens_block = code
            .match_indices("unsafe")
            .any(|(at, _)| code[at + "unsafe".len()..].trim_start().starts_with('{'));
        if !opens_block || line.contains("SAFETY") {
            continue;
        }
        let mut ok = false;
        let mut j = i;
        while j > 0 {
            j -= 1;
            let t = lines[j].trim();
            if t.starts_with("//") {
                if t.contains("SAFETY") {
                    ok = true;
                    break;
                }
                continue;
            }
            // The same statement, begun on an earlier line.
            if !t.is_empty() && !t.ends_with([';', '{', '}', ',']) && i - j <= STATEMENT_LINES {
                continue;
            }
            break;
        }
        if !ok {
            found.push(i + 1);
        }
    }
    found
}

#[test]
fn every_unsafe_block_has_a_safety_comment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut missing = Vec::new();
    let mut blocks = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read file");
        blocks += text.matches("unsafe {").count();
        for line in uncommented(&text) {
            missing.push(format!("{}:{line}", file.display()));
        }
    }
    assert!(
        blocks > 20,
        "found only {blocks} unsafe blocks: not reading src/ right"
    );
    assert!(
        missing.is_empty(),
        "unsafe blocks without a `// SAFETY:` comment:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_check_sees_a_missing_comment() {
    let text = "fn f() {\n    // SAFETY: fine.\n    unsafe { g() };\n    let x =\n        unsafe { h() };\n}\n";
    assert_eq!(uncommented(text), vec![5]);
    let text = "// SAFETY: the pointer is ours.\nlet x = unsafe {\n    *p\n};\n";
    assert!(uncommented(text).is_empty());
}
