//! Released versions of the plugin interface never change. `wit/released.txt`
//! lists every released version of `soxara:gateway` with the SHA-256 of its
//! WIT, comments and layout ignored. The version in `wit/` (the newest) and
//! each older one the host still supports (`wit/released/<version>/`) must
//! still hash to what was released: a change to a released interface fails
//! here until it is made under a new version.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// The WIT text of a directory's `*.wit` files (by name order) without
/// comments (doc comments included) and with whitespace collapsed: what
/// a component is built against, not how it is written down.
fn normalized(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .wit files in {}", dir.display());
    let mut tokens = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("WIT is UTF-8");
        let code = strip_comments(&text);
        tokens.extend(code.split_whitespace().map(str::to_string));
    }
    tokens.join(" ")
}

/// Removes `// …` line comments and `/* … */` block comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |at| &after[at..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |at| &after[at + 2..]);
            out.push(' ');
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn digest(normalized: &str) -> String {
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

/// The version in `package soxara:gateway@<version>;`.
fn package_version(normalized: &str) -> String {
    let start = normalized.find("package soxara:gateway@").expect("a soxara:gateway package") + 23;
    normalized[start..].split(';').next().expect("a package line").trim().to_string()
}

/// `(version, sha256)` from `wit/released.txt`.
fn released() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(wit_dir().join("released.txt")).expect("wit/released.txt");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (version, hash) = line.split_once(char::is_whitespace).expect("`<version> <sha256>` per line");
            (version.to_string(), hash.trim().to_string())
        })
        .collect()
}

#[test]
fn released_interfaces_are_unchanged() {
    let current = normalized(&wit_dir());
    let current_version = package_version(&current);
    for (version, hash) in released() {
        let (dir, text) = if version == current_version {
            (wit_dir(), current.clone())
        } else {
            let dir = wit_dir().join("released").join(&version);
            assert!(
                dir.is_dir(),
                "soxara:gateway@{version} is released, so its WIT stays in wit/released/{version}/ while the host \
                 supports it (or leaves wit/released.txt deliberately when support ends)"
            );
            let text = normalized(&dir);
            (dir, text)
        };
        assert_eq!(package_version(&text), version, "{} declares another version", dir.display());
        let now = digest(&text);
        assert_eq!(
            now,
            hash,
            "{} changed soxara:gateway@{version}, which is released and frozen: plugins built against it would \
             stop loading. Put the change under a new version (bump the package in wit/, keep {version} in \
             wit/released/{version}/), or undo it. Comments and layout may change freely. (It now hashes to {now}.)",
            dir.display()
        );
    }
}

#[test]
fn only_meaning_counts_toward_the_hash() {
    let words = |s: &str| strip_comments(s).split_whitespace().collect::<Vec<_>>().join(" ");
    let original = words("/// Money.\nrecord money { amount: u64, // minor units\n currency: string }");
    let reworded = words("/* An amount. */ record money {\n    amount: u64,\n    currency: string }  // ISO 4217");
    let retyped = words("/// Money.\nrecord money { amount: u32, currency: string }");
    assert_eq!(original, "record money { amount: u64, currency: string }");
    assert_eq!(digest(&original), digest(&reworded));
    assert_ne!(digest(&original), digest(&retyped));
    assert_eq!(package_version("package soxara:gateway@0.2.0; interface x {}"), "0.2.0");
}
