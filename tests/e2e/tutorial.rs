//! `docs/tutorial.md` must not drift from the code: every source excerpt it marks with
//! `<!-- excerpt: PATH -->` still appears in PATH, the dependencies it gives "your own app"
//! are the ones that app's source (the crate's example) uses, at the versions this repository
//! builds with, it documents every `STEPUP_PROFILE`, and every setting it names exists in
//! `src/config.rs`.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use fabrikam::config::StepUpProfile;

const TUTORIAL: &str = "docs/tutorial.md";
const CONFIG: &str = "src/config.rs";
/// A line of an excerpt that stands for lines left out.
const ELISION: &str = "// ...";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A ```rust block of the tutorial that quotes a source file.
#[derive(Debug)]
struct Excerpt {
    /// The file it quotes, relative to the repository root.
    path: String,
    /// The tutorial's line number of the marker (1-based), for messages.
    line: usize,
    body: Vec<String>,
}

/// Every `<!-- excerpt: PATH -->` marker and the ```rust block right after it. A marker that
/// is not followed by a ```rust block, or one that cannot be parsed, is an error.
fn excerpts(markdown: &str) -> Result<Vec<Excerpt>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if !line.starts_with("<!-- excerpt") {
            continue;
        }
        let path = line
            .strip_prefix("<!-- excerpt:")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("line {}: malformed marker {line:?}", i + 1))?;
        if lines.get(i + 1).map(|l| l.trim()) != Some("```rust") {
            return Err(format!(
                "line {}: the excerpt marker for {path} must be directly followed by a ```rust fence",
                i + 1
            ));
        }
        let body: Vec<String> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .map(|l| l.to_string())
            .collect();
        if i + 2 + body.len() >= lines.len() {
            return Err(format!("line {}: the excerpt of {path} is never closed", i + 1));
        }
        found.push(Excerpt {
            path: path.to_owned(),
            line: i + 1,
            body,
        });
    }
    Ok(found)
}

/// Checks that `excerpt` appears in `source`: lines are compared without their leading and
/// trailing whitespace, and each run of lines between `// ...` elisions must appear as
/// consecutive lines of the source, the runs in order.
fn appears_in(excerpt: &[String], source: &str) -> Result<(), String> {
    let source: Vec<&str> = source.lines().map(str::trim).collect();
    let mut runs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in excerpt.iter().map(|l| l.trim()) {
        if line == ELISION {
            runs.push(Vec::new());
        } else {
            runs.last_mut().expect("runs is never empty").push(line);
        }
    }
    // Blank lines next to an elision only separate; they need not match.
    let runs: Vec<Vec<&str>> = runs
        .into_iter()
        .map(|run| {
            let start = run.iter().position(|l| !l.is_empty()).unwrap_or(run.len());
            let end = run.iter().rposition(|l| !l.is_empty()).map_or(start, |e| e + 1);
            run[start..end].to_vec()
        })
        .filter(|run| !run.is_empty())
        .collect();
    if runs.is_empty() {
        return Err("the excerpt is empty".into());
    }
    let mut from = 0;
    for run in &runs {
        let at = source
            .windows(run.len())
            .enumerate()
            .skip(from)
            .find(|(_, window)| *window == &run[..])
            .map(|(start, _)| start)
            .ok_or_else(|| {
                let first_missing = run.iter().find(|l| !source[from..].contains(l)).map_or_else(
                    || "its lines exist, but not consecutively".to_owned(),
                    |l| format!("first line not found: {l:?}"),
                );
                format!(
                    "this run of {} line(s) is not in the source (after line {from}): {first_missing}\n{}",
                    run.len(),
                    run.join("\n")
                )
            })?;
        from = at + run.len();
    }
    Ok(())
}

#[test]
fn every_source_excerpt_in_the_tutorial_still_appears_in_the_file_it_names() {
    let tutorial = read(TUTORIAL);
    let excerpts = excerpts(&tutorial).unwrap_or_else(|e| panic!("{TUTORIAL}: {e}"));
    assert!(
        excerpts.len() >= 5,
        "{TUTORIAL} should quote the policy, the extractor and a handler; found {} excerpts",
        excerpts.len()
    );
    let mut failures = Vec::new();
    for excerpt in &excerpts {
        let file = repo_file(&excerpt.path);
        let Ok(source) = std::fs::read_to_string(&file) else {
            failures.push(format!(
                "{TUTORIAL}:{}: {} does not exist",
                excerpt.line, excerpt.path
            ));
            continue;
        };
        if let Err(why) = appears_in(&excerpt.body, &source) {
            failures.push(format!(
                "{TUTORIAL}:{}: the excerpt of {} has drifted from the file.\n{why}",
                excerpt.line, excerpt.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "update the tutorial's excerpts:\n\n{}",
        failures.join("\n\n")
    );
}

/// The ```toml block after `<!-- dependencies of PATH -->`: PATH and the block's lines.
fn dependency_block(markdown: &str) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = markdown.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim().starts_with("<!-- dependencies of "))?;
    let path = lines[at]
        .trim()
        .strip_prefix("<!-- dependencies of ")?
        .strip_suffix("-->")?
        .trim()
        .to_owned();
    if lines.get(at + 1).map(|l| l.trim()) != Some("```toml") {
        return None;
    }
    let body = lines[at + 2..]
        .iter()
        .take_while(|l| l.trim() != "```")
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    Some((path, body))
}

#[test]
fn the_own_app_section_lists_every_crate_its_source_uses_at_this_repositorys_versions() {
    let tutorial = read(TUTORIAL);
    let (source_path, deps) = dependency_block(&tutorial)
        .unwrap_or_else(|| panic!("{TUTORIAL} has no `<!-- dependencies of PATH -->` + ```toml block"));
    let manifests = [read("Cargo.toml"), read("crates/actix-web-stepup/Cargo.toml")];
    let mut named = Vec::new();
    for line in &deps {
        let name = line.split('=').next().unwrap_or_default().trim().to_owned();
        if name == "actix-web-stepup" {
            assert!(
                line.contains("path = \"../fabrikam/crates/actix-web-stepup\""),
                "the crate comes from the clone: {line}"
            );
        } else {
            assert!(
                manifests.iter().any(|m| m.lines().any(|l| l.trim() == line)),
                "{TUTORIAL}: `{line}` is not how this repository's manifests declare {name}"
            );
        }
        named.push(name.replace('-', "_"));
    }
    // Every crate the program names must be a dependency: the root of each `use` line, and
    // the first segment of any other path that is not a name a `use` line brought in.
    let source = read(&source_path);
    let words = |line: &str| -> Vec<String> {
        line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (uses, code): (Vec<&str>, Vec<&str>) = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .partition(|l| l.trim_start().starts_with("use "));
    let mut roots: Vec<String> = Vec::new();
    let mut imported: Vec<String> = Vec::new();
    for line in &uses {
        let mut w = words(line.trim_start().trim_start_matches("use "));
        if w.is_empty() {
            continue;
        }
        let root = w.remove(0);
        roots.push(root.split("::").next().unwrap_or_default().to_owned());
        for word in w {
            imported.extend(word.split("::").map(str::to_owned));
        }
    }
    for line in &code {
        for word in words(line) {
            if let Some((first, _)) = word.split_once("::")
                && !imported.iter().any(|i| i == first)
            {
                roots.push(first.to_owned());
            }
        }
    }
    let mut used: Vec<String> = Vec::new();
    for root in roots {
        let is_crate = root.starts_with(|c: char| c.is_ascii_lowercase())
            && !["std", "core", "alloc", "self", "super", "crate"].contains(&root.as_str());
        if is_crate && !used.contains(&root) {
            used.push(root);
        }
    }
    assert!(used.len() >= 4, "the scan finds the program's crates: {used:?}");
    let missing: Vec<&String> = used.iter().filter(|u| !named.contains(u)).collect();
    assert!(
        missing.is_empty(),
        "{source_path} uses {missing:?}, which the tutorial's dependency list lacks"
    );
}

#[test]
fn the_tutorial_shows_how_to_select_every_stepup_profile() {
    let tutorial = read(TUTORIAL);
    for profile in StepUpProfile::value_variants() {
        let name = profile
            .to_possible_value()
            .expect("every profile has a name")
            .get_name()
            .to_owned();
        assert!(
            tutorial.contains(&format!("STEPUP_PROFILE={name}")),
            "{TUTORIAL} never shows STEPUP_PROFILE={name}: document what it requests, accepts and \
             needs at the provider"
        );
    }
}

/// The names inside single-backtick code spans that look like settings: upper case, digits
/// and underscores with at least one underscore, alone or before `=` (`IDP_MFA_AT_LOGIN=true`).
fn settings_named_in_code_spans(markdown: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Odd-numbered pieces between backticks are code spans (the tutorial uses single
        // backticks only).
        for span in line.split('`').skip(1).step_by(2) {
            let name = span.split('=').next().unwrap_or_default().trim();
            let looks_like_setting = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.contains('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if looks_like_setting && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_setting_the_tutorial_names_exists_in_the_configuration() {
    let tutorial = read(TUTORIAL);
    let config = read(CONFIG);
    let names = settings_named_in_code_spans(&tutorial);
    assert!(
        names.iter().any(|n| n == "STEPUP_PROFILE"),
        "the tutorial should name its settings in backticks; found {names:?}"
    );
    let unknown: Vec<&String> = names
        .iter()
        .filter(|name| !config.contains(&format!("env = \"{name}\"")))
        .collect();
    assert!(
        unknown.is_empty(),
        "{TUTORIAL} names settings that {CONFIG} does not read (no `env = \"NAME\"`): {unknown:?}. \
         A shell variable is written `$NAME`."
    );
}

#[test]
fn the_excerpt_check_refuses_drift_and_accepts_elisions() {
    let source = "fn f() {\n    let a = 1;\n    let b = 2;\n    let c = 3;\n}\n";
    let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(appears_in(&lines("let a = 1;\n  let b = 2;"), source), Ok(()));
    assert_eq!(
        appears_in(&lines("fn f() {\n// ...\nlet c = 3;\n}"), source),
        Ok(())
    );
    assert!(
        appears_in(&lines("let a = 1;\nlet c = 3;"), source).is_err(),
        "not consecutive"
    );
    assert!(
        appears_in(&lines("let c = 3;\n// ...\nlet a = 1;"), source).is_err(),
        "out of order"
    );
    assert!(
        appears_in(&lines("let a = 10;"), source).is_err(),
        "a changed value"
    );
    assert!(appears_in(&lines("// ..."), source).is_err(), "nothing quoted");

    let markdown = "text\n<!-- excerpt: src/x.rs -->\n```rust\nlet a = 1;\n```\n";
    let found = excerpts(markdown).unwrap();
    assert_eq!((found[0].path.as_str(), found[0].line), ("src/x.rs", 2));
    assert_eq!(found[0].body, vec!["let a = 1;"]);
    assert!(excerpts("<!-- excerpt: src/x.rs -->\n\n```rust\nx\n```\n").is_err());
    assert!(excerpts("<!-- excerpt: src/x.rs -->\n```rust\nx\n").is_err());
    assert!(excerpts("<!-- excerpt src/x.rs -->\n```rust\nx\n```\n").is_err());
}

#[test]
fn settings_are_read_from_code_spans_but_not_from_shell_blocks() {
    let markdown = "Set `IDP_MFA_AT_LOGIN=true` and `SESSION_SECRET`, not `$ACCESS_TOKEN`, `GET` \
                    or `JBSWY3DP`.\n```sh\nREDIRECT_URI=x\n```\n";
    assert_eq!(
        settings_named_in_code_spans(markdown),
        vec!["IDP_MFA_AT_LOGIN", "SESSION_SECRET"]
    );
}
