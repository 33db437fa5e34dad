//! The README and `docs/` name only what exists: every relative link (and its `#anchor`)
//! leads to a file and a heading, every repository path named leads to a file or
//! directory, every cargo target a command names (`--example`, `--bin`, `--test`,
//! `--bench`, `-p`) is one of the workspace's, and every `AGGREGATOR_*` variable is read
//! somewhere outside the docs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut found = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/ is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// The targets of `[text](target)` links, with the line each is on.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((n + 1, after[..end].to_owned()));
            rest = &after[end..];
        }
    }
    found
}

/// Paths the docs name that start at one of the repository's own top-level entries.
fn named_paths(text: &str) -> Vec<(usize, String)> {
    const TOP: [&str; 18] = [
        "scripts/",
        "deploy/",
        "docs/",
        "tests/",
        "examples/",
        "src/",
        "fuzz/",
        "load/",
        "benches/",
        "mock-vendors/",
        ".ci/",
        "aggregator-core/",
        "aggregator-postgres/",
        "aggregator-rabbitmq/",
        "aggregator-redis/",
        "aggregator-http/",
        "Dockerfile",
        "docker-compose.yml",
    ];
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (start, _) in line.char_indices() {
            let before = line[..start].chars().next_back();
            // A path starts a word: not inside a URL, another path or a name.
            if before.is_some_and(|c| c.is_alphanumeric() || "/.-_:@".contains(c)) {
                continue;
            }
            let rest = &line[start..];
            if !TOP.iter().any(|top| rest.starts_with(top)) {
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || "/._-".contains(c)))
                .unwrap_or(rest.len());
            // A pattern (`fuzz/artifacts/<target>/`) names a place made at run time.
            if rest[end..].starts_with(['<', '*', '{']) {
                continue;
            }
            let path = rest[..end].trim_end_matches(['.', ',', ':']);
            found.push((n + 1, path.to_owned()));
        }
    }
    found
}

/// The workspace's packages and targets, as `cargo metadata` lists them.
struct Targets {
    packages: BTreeSet<String>,
    by_kind: BTreeSet<(String, String)>,
}

fn targets() -> Targets {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut packages = BTreeSet::new();
    let mut by_kind = BTreeSet::new();
    for package in metadata["packages"].as_array().expect("packages") {
        packages.insert(package["name"].as_str().expect("name").to_owned());
        for target in package["targets"].as_array().expect("targets") {
            let name = target["name"].as_str().expect("target name");
            for kind in target["kind"].as_array().expect("kinds") {
                by_kind.insert((kind.as_str().expect("kind").to_owned(), name.to_owned()));
            }
        }
    }
    Targets { packages, by_kind }
}

/// `(flag, value)` pairs of every `cargo ...` command line in the text.
fn cargo_arguments(text: &str) -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("cargo ") {
            let command = &rest[at..];
            let end = command
                .find(['`', '#', '|', '&', ';'])
                .unwrap_or(command.len());
            let words: Vec<&str> = command[..end].split_whitespace().collect();
            for pair in words.windows(2) {
                if ["--example", "--bin", "--test", "--bench", "-p"].contains(&pair[0]) {
                    found.push((n + 1, pair[0].to_owned(), pair[1].to_owned()));
                }
            }
            rest = &command[end..];
        }
    }
    found
}

/// Every file outside the docs, target/ and .git that a variable could be read in.
fn sources() -> String {
    let mut text = String::new();
    let mut dirs = vec![root()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !["target", ".git", "docs", "node_modules"].contains(&name) {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs")
                || name.ends_with(".sh")
                || name.ends_with(".py")
                || name.ends_with(".yml")
                || name == "Dockerfile"
                || name == "run"
            {
                text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    text
}

#[test]
fn the_docs_name_only_what_exists() {
    let targets = targets();
    let code = sources();
    let mut wrong = Vec::new();
    for document in documents() {
        let text = read(&document);
        let shown = document
            .strip_prefix(root())
            .unwrap_or(&document)
            .display()
            .to_string();
        let dir = document.parent().expect("a directory");
        for (line, link) in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                document.clone()
            } else {
                dir.join(path)
            };
            if !target.exists() {
                wrong.push(format!("{shown}:{line}: link to a missing {link}"));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&target)).contains(anchor) {
                wrong.push(format!(
                    "{shown}:{line}: no heading for #{anchor} in {link}"
                ));
            }
        }
        for (line, path) in named_paths(&text) {
            if !root().join(&path).exists() {
                wrong.push(format!("{shown}:{line}: names a missing path {path}"));
            }
        }
        for (line, flag, value) in cargo_arguments(&text) {
            let known = match flag.as_str() {
                "-p" => targets.packages.contains(&value),
                "--example" => targets.by_kind.contains(&("example".into(), value.clone())),
                "--bin" => targets.by_kind.contains(&("bin".into(), value.clone())),
                "--test" => targets.by_kind.contains(&("test".into(), value.clone())),
                _ => targets.by_kind.contains(&("bench".into(), value.clone())),
            };
            if !known {
                wrong.push(format!(
                    "{shown}:{line}: cargo {flag} {value} is no target here"
                ));
            }
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("AGGREGATOR_") {
            let name_end = rest[at..]
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .map_or(rest.len(), |end| at + end);
            let name = rest[at..name_end].trim_end_matches('_');
            if !code.contains(name) {
                wrong.push(format!("{shown}: {name} is read nowhere"));
            }
            rest = &rest[name_end..];
        }
    }
    assert!(
        wrong.is_empty(),
        "the docs name what does not exist:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_script_is_named_in_the_docs() {
    let docs: String = documents().iter().map(|d| read(d)).collect();
    let mut unnamed = Vec::new();
    for entry in std::fs::read_dir(root().join("scripts")).expect("scripts/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !docs.contains(&name) {
            unnamed.push(name);
        }
    }
    assert!(unnamed.is_empty(), "scripts no document names: {unnamed:?}");
}

#[test]
fn the_checks_find_what_they_look_for() {
    assert_eq!(
        slug("RabbitMQ: the work queues"),
        "rabbitmq-the-work-queues"
    );
    assert_eq!(
        slug("Metrics and health of every process"),
        "metrics-and-health-of-every-process"
    );
    assert_eq!(slug("AggregatorProcessDown"), "aggregatorprocessdown");
    assert_eq!(
        links("see [a](docs/A.md#x) and [b](#y)"),
        vec![(1, "docs/A.md#x".into()), (1, "#y".into())]
    );
    assert_eq!(
        named_paths("run `bash scripts/fuzz.sh`, see fuzz/artifacts/<target>/ and http://x/docs/y"),
        vec![(1, "scripts/fuzz.sh".into())]
    );
    assert_eq!(
        cargo_arguments(
            "`cargo run -p mock-vendors --bin mock-vendors` and cargo test --test faults -- --list"
        ),
        vec![
            (1, "-p".into(), "mock-vendors".into()),
            (1, "--bin".into(), "mock-vendors".into()),
            (1, "--test".into(), "faults".into())
        ]
    );
}
