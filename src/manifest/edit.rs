//! Editing manifests as text, keeping their comments and order: writing a secret into a
//! `Variables` entry, or replacing an existing secret's ciphertext (for `tether secret`).

use super::yaml;

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("document {0} is not in the file")]
    NoDocument(usize),
    #[error("{0} is not in the document")]
    NoPath(String),
    #[error("{0} is written in flow style ({{…}}); write it as a block to edit it with tether")]
    FlowStyle(String),
    #[error("the file is not valid YAML: {0}")]
    Syntax(String),
    #[error("the edit did not produce the expected value at {0}; nothing was written")]
    Check(String),
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines (0-based, end exclusive) that a key on `key_line` and its value occupy: up to the
/// next non-blank, non-comment line indented no deeper than the key. Trailing blank and comment
/// lines are left to whatever follows.
fn region(lines: &[&str], key_line: usize, key_indent: usize) -> (usize, usize) {
    let mut end = key_line + 1;
    let mut last_content = key_line;
    while end < lines.len() {
        let l = lines[end];
        let t = l.trim_start();
        if !t.is_empty() && !t.starts_with('#') {
            // Document markers (`---`) sit at column 0, so the indent test covers them too.
            if indent_of(l) <= key_indent {
                break;
            }
            last_content = end;
        }
        end += 1;
    }
    (key_line, last_content + 1)
}

fn block(indent: usize, key: &str, ciphertext: &str, nested: bool) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut out = Vec::new();
    let body_indent = if nested {
        out.push(format!("{pad}{key}:"));
        out.push(format!("{pad}  secret: |"));
        indent + 4
    } else {
        out.push(format!("{pad}{key}: |"));
        indent + 2
    };
    let bpad = " ".repeat(body_indent);
    out.extend(ciphertext.trim().lines().map(|l| format!("{bpad}{l}")));
    out
}

fn splice(text: &str, range: (usize, usize), new: Vec<String>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines[..range.0].iter().map(|s| s.to_string()).collect();
    out.extend(new);
    out.extend(lines[range.1..].iter().map(|s| s.to_string()));
    let mut s = out.join("\n");
    if text.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn doc_index(text: &str, doc: usize) -> Result<yaml::PathIndex, EditError> {
    let docs = yaml::documents(text).map_err(|e| EditError::Syntax(e.message))?;
    docs.into_iter()
        .nth(doc)
        .map(|d| d.index)
        .ok_or(EditError::NoDocument(doc))
}

/// Sets `spec.entries.KEY` of document `doc` to `{secret: ciphertext}`, replacing the entry if
/// present or adding it after the last entry. Everything else is kept byte for byte.
pub fn set_entry_secret(
    text: &str,
    doc: usize,
    key: &str,
    ciphertext: &str,
) -> Result<String, EditError> {
    let index = doc_index(text, doc)?;
    let lines: Vec<&str> = text.lines().collect();
    let path = format!("spec.entries.{key}");
    let out = if let Some(pos) = index.get(&path) {
        let r = region(&lines, pos.line - 1, pos.col - 1);
        splice(text, r, block(pos.col - 1, key, ciphertext, true))
    } else {
        let entries = index
            .get("spec.entries")
            .ok_or_else(|| EditError::NoPath("spec.entries".into()))?;
        let children: Vec<_> = index.children("spec.entries").map(|(_, p)| p).collect();
        let Some(first) = children.iter().min().copied() else {
            return Err(EditError::FlowStyle("spec.entries".into()));
        };
        if first.line == entries.line {
            return Err(EditError::FlowStyle("spec.entries".into()));
        }
        let (_, end) = region(&lines, entries.line - 1, entries.col - 1);
        splice(
            text,
            (end, end),
            block(first.col - 1, key, ciphertext, true),
        )
    };
    check(&out, doc, &["spec", "entries", key, "secret"], ciphertext)?;
    Ok(out)
}

/// Replaces the ciphertext of an existing secret at `path` (`spec.entries.KEY.secret`,
/// `spec.databaseUrl.secret`, `spec.receivers[0].slack.url.secret`).
pub fn replace_secret(
    text: &str,
    doc: usize,
    path: &str,
    ciphertext: &str,
) -> Result<String, EditError> {
    let index = doc_index(text, doc)?;
    let lines: Vec<&str> = text.lines().collect();
    let pos = index
        .get(path)
        .ok_or_else(|| EditError::NoPath(path.into()))?;
    let key_text = lines[pos.line - 1].trim_start();
    if key_text.starts_with('{') || !key_text.starts_with("secret") {
        return Err(EditError::FlowStyle(
            path.rsplit_once('.').map(|(p, _)| p).unwrap_or(path).into(),
        ));
    }
    let r = region(&lines, pos.line - 1, pos.col - 1);
    let out = splice(text, r, block(pos.col - 1, "secret", ciphertext, false));
    let parts: Vec<&str> = path.split('.').collect();
    check(&out, doc, &parts, ciphertext)?;
    Ok(out)
}

/// Parses the result and confirms the value at `path` is the ciphertext.
fn check(text: &str, doc: usize, path: &[&str], ciphertext: &str) -> Result<(), EditError> {
    let docs = yaml::documents(text)
        .map_err(|e| EditError::Check(format!("{} ({})", path.join("."), e.message)))?;
    let mut v = &docs.get(doc).ok_or(EditError::NoDocument(doc))?.value;
    for p in path {
        // `receivers[0]`: a key, then an item of the sequence under it.
        let (key, item) = match p.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (*p, None),
        };
        v = v.get(key).ok_or_else(|| EditError::Check(path.join(".")))?;
        if let Some(i) = item {
            v = v.get(i).ok_or_else(|| EditError::Check(path.join(".")))?;
        }
    }
    if v.as_str().map(str::trim) == Some(ciphertext.trim()) {
        Ok(())
    } else {
        Err(EditError::Check(path.join(".")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# header comment\n---\napiVersion: tether.dev/v1\nkind: Variables\nmetadata: {name: v}\nspec:\n  environment: prod\n  entries:\n    # the log level\n    LOG_LEVEL: info\n    OLD:\n      secret: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        abc\n        -----END AGE ENCRYPTED FILE-----\n    # trailing comment stays\n    PORT: 8080\n---\napiVersion: tether.dev/v1\nkind: Variables\nmetadata: {name: w}\nspec: {environment: x, entries: {A: b}}\n";
    const CT: &str = "-----BEGIN AGE ENCRYPTED FILE-----\nNEW\n-----END AGE ENCRYPTED FILE-----\n";

    #[test]
    fn replaces_an_entry_keeping_comments_and_order() {
        let out = set_entry_secret(TEXT, 0, "LOG_LEVEL", CT).unwrap();
        assert!(out.starts_with("# header comment\n---\n"));
        assert!(out.contains("    # the log level\n    LOG_LEVEL:\n      secret: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        NEW\n        -----END AGE ENCRYPTED FILE-----\n    OLD:\n"), "{out}");
        assert!(out.contains("    # trailing comment stays\n    PORT: 8080\n"));
        assert!(out.ends_with("spec: {environment: x, entries: {A: b}}\n"));
    }

    #[test]
    fn adds_a_new_entry_after_the_last() {
        let out = set_entry_secret(TEXT, 0, "NEW_KEY", CT).unwrap();
        assert!(out.contains("    PORT: 8080\n    NEW_KEY:\n      secret: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n"), "{out}");
        assert_eq!(
            set_entry_secret(TEXT, 1, "NEW_KEY", CT).unwrap_err(),
            EditError::FlowStyle("spec.entries".into())
        );
    }

    #[test]
    fn replaces_a_secret_in_place() {
        let out = replace_secret(TEXT, 0, "spec.entries.OLD.secret", CT).unwrap();
        assert!(out.contains("    OLD:\n      secret: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        NEW\n"), "{out}");
        assert!(!out.contains("abc"));
        assert!(out.contains("    # trailing comment stays\n    PORT: 8080\n"));
    }
}
