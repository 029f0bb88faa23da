//! Code shape: no non-test function in the schema, collector or analyzer is longer than
//! 120 lines. Long functions are where stages blur together (issue #11); this test keeps
//! them from coming back. Functions are found with `syn`, so strings, comments and macros
//! cannot fool a line count; `#[test]` functions and `#[cfg(test)]` modules (inline or in
//! their own file) are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// The longest a non-test function may be, counted from `fn` to its closing brace.
const MAX_FN_LINES: usize = 120;

/// Crates whose sources are held to the rule.
const SCANNED: &[&str] = &["schema/src", "collector/src", "analyzer/src"];

/// One function over the limit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LongFn {
    file: String,
    line: usize,
    name: String,
    lines: usize,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// True for `#[test]`, `#[cfg(test)]` and the like (`#[tokio::test]`, `#[cfg(all(test, …))]`).
fn is_test_attr(attr: &syn::Attribute) -> bool {
    let path = attr.path();
    if path.segments.last().is_some_and(|s| s.ident == "test") {
        return true;
    }
    if !path.is_ident("cfg") {
        return false;
    }
    let mut test = false;
    let _ = attr.parse_nested_meta(|m| {
        test |= m.path.is_ident("test");
        // `all(test, …)`: look one level down; `not(test)` is not a test module.
        if m.path.is_ident("all") {
            m.parse_nested_meta(|inner| {
                test |= inner.path.is_ident("test");
                Ok(())
            })?;
        } else if m.input.peek(syn::token::Paren) {
            let _skipped;
            syn::parenthesized!(_skipped in m.input);
        } else if m.input.peek(syn::Token![=]) {
            let _value: syn::Lit = m.value()?.parse()?;
        }
        Ok(())
    });
    test
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(is_test_attr)
}

/// Collects the long functions of one file and the `#[cfg(test)] mod x;` it declares.
struct Scan<'a> {
    file: &'a str,
    long: Vec<LongFn>,
    test_mod_files: Vec<String>,
}

impl Scan<'_> {
    fn check(&mut self, name: &syn::Ident, sig: &syn::Signature, block: &syn::Block) {
        let start = sig.span().start().line;
        let end = block.brace_token.span.close().end().line;
        let lines = end.saturating_sub(start) + 1;
        if lines > MAX_FN_LINES {
            self.long.push(LongFn {
                file: self.file.to_string(),
                line: start,
                name: name.to_string(),
                lines,
            });
        }
    }
}

impl<'ast> Visit<'ast> for Scan<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_test(&m.attrs) {
            if m.content.is_none() {
                self.test_mod_files.push(m.ident.to_string());
            }
            return;
        }
        syn::visit::visit_item_mod(self, m);
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_test(&f.attrs) {
            return;
        }
        self.check(&f.sig.ident, &f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test(&f.attrs) {
            return;
        }
        self.check(&f.sig.ident, &f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if is_test(&f.attrs) {
            return;
        }
        if let Some(block) = &f.default {
            self.check(&f.sig.ident, &f.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// The long functions of one source text, and the names of its out-of-line test modules.
fn scan_source(file: &str, text: &str) -> Result<(Vec<LongFn>, Vec<String>), String> {
    let ast = syn::parse_file(text).map_err(|e| format!("{file}: {e}"))?;
    let mut scan = Scan {
        file,
        long: Vec::new(),
        test_mod_files: Vec::new(),
    };
    scan.visit_file(&ast);
    Ok((scan.long, scan.test_mod_files))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where the children of the module in `file` live (`a/b.rs` → `a/b/`, `a/mod.rs` → `a/`).
fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("")).to_path_buf();
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") | None => parent,
        Some(stem) => parent.join(stem),
    }
}

/// Every function over the limit under the scanned folders of `root`.
fn long_functions(root: &Path) -> Result<Vec<LongFn>, String> {
    let mut files = Vec::new();
    for dir in SCANNED {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut test_paths: BTreeSet<PathBuf> = BTreeSet::new();
    let mut long = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let (found, test_mods) = scan_source(&rel, &text)?;
        let dir = module_dir(path);
        test_paths.extend(test_mods.iter().map(|m| dir.join(m)));
        long.extend(found.into_iter().map(|f| (path.clone(), f)));
    }
    // Drop what lives in an out-of-line test module (`m.rs` or anything under `m/`).
    let in_test_mod = |p: &Path| {
        test_paths
            .iter()
            .any(|t| p.starts_with(t) || p == t.with_extension("rs"))
    };
    let mut out: Vec<LongFn> = long
        .into_iter()
        .filter(|(p, _)| !in_test_mod(p))
        .map(|(_, f)| f)
        .collect();
    out.sort();
    Ok(out)
}

#[test]
fn no_function_over_120_lines() {
    let long = match long_functions(&workspace_root()) {
        Ok(l) => l,
        Err(e) => panic!("scan failed: {e}"),
    };
    let new: Vec<String> = long
        .iter()
        .map(|f| format!("{}:{} fn {} ({} lines)", f.file, f.line, f.name, f.lines))
        .collect();
    assert!(
        new.is_empty(),
        "non-test functions longer than {MAX_FN_LINES} lines:\n{}",
        new.join("\n")
    );
}

/// A function of `body_lines` statements: `fn` line + body + closing brace.
fn generated_fn(name: &str, body_lines: usize) -> String {
    let body: String = (0..body_lines)
        .map(|i| format!("    let _x{i} = {i};\n"))
        .collect();
    format!("fn {name}() {{\n{body}}}\n")
}

#[test]
fn scanner_counts_lines_and_skips_tests() {
    let at_limit = generated_fn("at_limit", MAX_FN_LINES - 2);
    let over = generated_fn("over", MAX_FN_LINES - 1);
    let text = format!(
        "{at_limit}{over}\nstruct S;\nimpl S {{\n{}}}\n#[cfg(test)]\nmod tests {{\n{}}}\n#[test]\n{}\n#[cfg(test)]\nmod more;\n",
        generated_fn("method_over", MAX_FN_LINES),
        generated_fn("in_test_mod", 500),
        generated_fn("a_test", 500),
    );
    let (long, test_mods) = match scan_source("x.rs", &text) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let found: Vec<(&str, usize)> = long.iter().map(|f| (f.name.as_str(), f.lines)).collect();
    assert_eq!(
        found,
        vec![
            ("over", MAX_FN_LINES + 1),
            ("method_over", MAX_FN_LINES + 2)
        ]
    );
    assert_eq!(test_mods, vec!["more".to_string()]);
    assert_eq!(long[0].line, MAX_FN_LINES + 1);
}

#[test]
fn cfg_test_forms() {
    let attrs = |src: &str| match syn::parse_str::<syn::ItemMod>(&format!("{src} mod m {{}}")) {
        Ok(m) => is_test(&m.attrs),
        Err(e) => panic!("{e}"),
    };
    assert!(attrs("#[cfg(test)]"));
    assert!(attrs("#[cfg(all(test, feature = \"x\"))]"));
    assert!(!attrs("#[cfg(not(test))]"));
    assert!(!attrs("#[cfg(feature = \"test\")]"));
    assert!(!attrs("#[allow(dead_code)]"));
}
