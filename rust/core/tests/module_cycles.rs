//! No module cycles inside serlaq-core: the Rust twin of `tests/test_layers.py`.
//!
//! Every file under `src/` is one node (its inline modules, `mod tests` included, belong to
//! it). An edge `a -> b` is any path in `a` that starts at `crate::`, `super::` or `self::`
//! and names something in file `b` (a name a parent re-exports with `pub use child::..` is
//! followed to the child that defines it). A parent's references to its own descendants
//! are not edges: `mod.rs`/`lib.rs` declare and re-export their children, that is their
//! job, while a child may use what its parent defines (an error type, shared records).
//! The graph must have no cycle; the failure names one, file by file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,  // `::`
    Open, // `{`
    Close,
    Comma,
    Star,
    Other,
}

/// Rust source -> tokens, without comments, string and char literals.
fn tokenize(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == 'r'
            && (c.get(i + 1) == Some(&'"')
                || (c.get(i + 1) == Some(&'#') && matches!(c.get(i + 2), Some('"') | Some('#'))))
        {
            // raw string r"..", r#".."#
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(Tok::Other);
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Other);
        } else if ch == '\'' {
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1; // a lifetime
            }
            out.push(Tok::Other);
        } else if ch.is_alphabetic() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[s..i].iter().collect()));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Tok::Sep);
            i += 2;
        } else {
            out.push(match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

/// A `use` tree or path at `toks[*i]` (after its first segment) -> the full paths it names.
fn parse_tree(toks: &[Tok], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        if toks.get(*i) != Some(&Tok::Sep) {
            out.push(path);
            return;
        }
        *i += 1;
        match toks.get(*i) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *i += 1;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Ident(s)) => {
                            let mut p = path.clone();
                            p.push(s.clone());
                            *i += 1;
                            parse_tree(toks, i, p, out);
                        }
                        Some(Tok::Open) => {
                            // `{a, b}` nested without a leading segment: treat as one level
                            parse_tree(toks, i, path.clone(), out);
                        }
                        Some(Tok::Close) => {
                            *i += 1;
                            return;
                        }
                        None => return,
                        _ => *i += 1, // `,`, `*`, `as`-renames' idents are handled above
                    }
                }
            }
            _ => {
                // `*` or anything else ends the path
                out.push(path);
                return;
            }
        }
    }
}

/// Module path of a file under `src/`: `lib.rs` -> [], `a/mod.rs` -> [a], `a/b.rs` -> [a, b].
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("lib") | Some("mod") | Some("main")) {
        parts.pop();
    }
    parts
}

/// `file -> source` (paths relative to `src/`) -> edges between files.
fn edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> = files.keys().map(|f| (module_of(f), f.clone())).collect();
    // re-exports: module -> name -> the module path it comes from
    let mut reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (f, src) in files {
        let me = module_of(f);
        let toks = tokenize(src);
        for w in 0..toks.len() {
            if toks[w] == Tok::Ident("pub".into()) && toks.get(w + 1) == Some(&Tok::Ident("use".into())) {
                if let Some(Tok::Ident(first)) = toks.get(w + 2) {
                    if first == "crate" || first == "super" || first == "self" {
                        continue;
                    }
                    let mut i = w + 3;
                    let mut paths = Vec::new();
                    parse_tree(&toks, &mut i, vec![first.clone()], &mut paths);
                    for p in paths {
                        if p.len() >= 2 {
                            let mut target = me.clone();
                            target.extend(p[..p.len() - 1].iter().cloned());
                            reexports.entry(me.clone()).or_default().insert(p[p.len() - 1].clone(), target);
                        }
                    }
                }
            }
        }
    }
    let resolve = |path: &[String]| -> Option<String> {
        let mut best = None;
        for n in (0..=path.len()).rev() {
            if let Some(f) = modules.get(&path[..n]) {
                best = Some((n, f.clone()));
                break;
            }
        }
        let (n, mut file) = best?;
        if let (Some(next), Some(map)) = (path.get(n), reexports.get(&path[..n])) {
            if let Some(target) = map.get(next) {
                if let Some(f) = modules.get(target) {
                    file = f.clone();
                }
            }
        }
        Some(file)
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, src) in files {
        let me = module_of(f);
        out.entry(f.clone()).or_default();
        let toks = tokenize(src);
        // inline `mod name {` nesting: (brace depth at open, name)
        let mut inline: Vec<(usize, String)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(d, _)| *d == depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(k) if k == "mod" => {
                    if let (Some(Tok::Ident(name)), Some(Tok::Open)) = (toks.get(i + 1), toks.get(i + 2)) {
                        inline.push((depth, name.clone()));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                }
                Tok::Ident(k)
                    if (k == "crate" || k == "super" || k == "self") && toks.get(i + 1) == Some(&Tok::Sep) =>
                {
                    let mut here = me.clone();
                    here.extend(inline.iter().map(|(_, n)| n.clone()));
                    let mut base = if k == "crate" { Vec::new() } else { here.clone() };
                    let mut j = i;
                    if k == "super" {
                        base.pop();
                        j += 2;
                        while toks.get(j) == Some(&Tok::Ident("super".into())) && toks.get(j + 1) == Some(&Tok::Sep) {
                            base.pop();
                            j += 2;
                        }
                        j -= 1; // back onto the last `::`
                                // parse_tree starts at a `::`
                    } else {
                        j += 1;
                    }
                    let mut paths = Vec::new();
                    parse_tree(&toks, &mut j, base, &mut paths);
                    for p in paths {
                        if let Some(target) = resolve(&p) {
                            let tm = module_of(&target);
                            let descendant = tm.len() > me.len() && tm[..me.len()] == me[..];
                            if target != *f && !descendant {
                                out.entry(f.clone()).or_default().insert(target);
                            }
                        }
                    }
                    i = j.max(i + 1);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// One cycle of the graph, if any (as the files around it).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        mark: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        mark.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match mark.get(m).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(m, g, mark, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark.insert(n.to_string(), Mark::Done);
        None
    }
    let mut mark = BTreeMap::new();
    for n in g.keys() {
        if mark.get(n).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(n, g, &mut mark, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            read_tree(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.insert(rel, std::fs::read_to_string(&p).unwrap());
        }
    }
}

fn crate_of(files: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    edges(&files.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect())
}

#[test]
fn serlaq_core_has_no_module_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 20, "read only {} files under {}", files.len(), root.display());
    let g = edges(&files);
    // the graph is really read: known one-way imports are seen
    assert!(g["gemv.rs"].contains("bitpack.rs"), "{:?}", g["gemv.rs"]);
    assert!(g["features/pool.rs"].contains("features/simd.rs"), "{:?}", g["features/pool.rs"]);
    if let Some(c) = find_cycle(&g) {
        panic!("module cycle in serlaq-core: {}", c.join(" -> "));
    }
}

#[test]
fn a_crafted_cycle_is_found() {
    // a `use` line one way, an inline path back
    let g = crate_of(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::{Thing, other};\npub struct A;"),
        ("b.rs", "pub struct Thing;\npub fn other() -> usize { std::mem::size_of::<super::a::A>() }"),
    ]);
    let c = find_cycle(&g).expect("the a <-> b cycle");
    assert!(c.contains(&"a.rs".to_string()) && c.contains(&"b.rs".to_string()), "{c:?}");
    // through a parent's re-export: features::Plan is really features/plan.rs
    let g = crate_of(&[
        ("lib.rs", "pub mod features;\n"),
        ("features/mod.rs", "pub mod plan;\npub mod pool;\npub use plan::{Plan, Rows};\n"),
        ("features/plan.rs", "use super::pool::Pooler;\npub struct Plan; pub struct Rows;"),
        ("features/pool.rs", "use crate::features::Rows;\npub struct Pooler;"),
    ]);
    assert!(find_cycle(&g).is_some(), "{g:?}");
}

#[test]
fn faces_tests_and_comments_make_no_cycle() {
    let g = crate_of(&[
        ("lib.rs", "pub mod features;\n"),
        // a parent re-exporting its children, and a child using its parent's error type
        ("features/mod.rs", "pub mod plan;\npub mod simd;\npub use plan::Plan;\npub enum FeatureError {}\n"),
        (
            "features/plan.rs",
            "use super::simd::dot;\nuse super::FeatureError;\npub struct Plan;\n\
             // crate::features::plan is not a path in a comment: crate::lib::x\n\
             const S: &str = \"super::simd::{x}\";\n\
             mod avx2 { use super::Plan; }\n\
             #[cfg(test)]\nmod tests { use super::*; }\n",
        ),
        ("features/simd.rs", "pub fn dot() -> char { '{' }\n"),
    ]);
    assert_eq!(find_cycle(&g), None, "{g:?}");
    assert_eq!(g["features/plan.rs"], BTreeSet::from(["features/simd.rs".to_string(), "features/mod.rs".to_string()]));
    assert!(g["features/simd.rs"].is_empty());
}
