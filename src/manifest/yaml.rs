//! The one place tether touches serde_yaml: splitting files into documents and placing errors.
//!
//! serde_yaml is deprecated; everything else in tether goes through this module, so swapping it
//! for a fork (serde_norway) is a change here only. Positions for rules checked after
//! deserializing come from an index of field path to line and column built with yaml-rust2's
//! event parser.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A YAML value, as produced by the parser (re-exported so no other module names serde_yaml).
pub type Value = serde_yaml::Value;

/// A line and column, both starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One document of a file: its parsed value, the line it starts on and its path index.
#[derive(Debug)]
pub struct Document {
    pub value: Value,
    pub start: Pos,
    pub index: PathIndex,
}

/// Maps a field path as serde_path_to_error spells it (`spec.entries.KEY`, `spec.checks[1]`)
/// to the position of the key (for a map entry) or of the item (for a sequence element).
#[derive(Debug, Default, Clone)]
pub struct PathIndex {
    positions: HashMap<String, Pos>,
}

impl PathIndex {
    /// The position of exactly `path`, if it is in the document.
    pub fn get(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }

    /// The paths directly below `prefix` (`spec.entries.A`, `spec.entries.B` for `spec.entries`).
    pub fn children<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, Pos)> + 'a {
        self.positions.iter().filter_map(move |(k, p)| {
            let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
            (!rest.contains('.') && !rest.contains('[')).then_some((k.as_str(), *p))
        })
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn locate(&self, path: &str) -> Option<Pos> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.positions.get(&p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

/// A syntax error: the file is not YAML, or not YAML we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Splits `text` into documents, each with its value and path index. Empty documents are
/// skipped. A syntax error anywhere makes the whole file one error.
pub fn documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut values = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let value = <Value as serde::Deserialize>::deserialize(de).map_err(|e| {
            let message = e.to_string();
            SyntaxError {
                pos: at_offset(text, &message)
                    .or_else(|| {
                        e.location().map(|l| Pos {
                            line: l.line(),
                            col: l.column(),
                        })
                    })
                    .unwrap_or(Pos { line: 1, col: 1 }),
                message: clean_message(&message),
            }
        })?;
        values.push(value);
    }
    let mut indexer = Indexer::default();
    Parser::new_from_str(text)
        .load(&mut indexer, true)
        .map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
    if indexer.docs.is_empty() && values.iter().all(Value::is_null) {
        // Empty or comment-only: serde_yaml sees one null document, the event parser none.
        return Ok(Vec::new());
    }
    if indexer.docs.len() != values.len() {
        return Err(SyntaxError {
            pos: Pos { line: 1, col: 1 },
            message: "the YAML parsers disagree on the number of documents".into(),
        });
    }
    Ok(values
        .into_iter()
        .zip(indexer.docs)
        .filter(|(v, _)| !v.is_null())
        .map(|(value, (start, index))| Document {
            value,
            start,
            index,
        })
        .collect())
}

/// Deserializes a value into `T`, returning the field path of the first error.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, clean_message(&e.inner().to_string()))
    })
}

/// Serializes to YAML text (used by `tether secret set` and tests).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_yaml::to_string(value).map_err(|e| e.to_string())
}

/// Parses one YAML text into `T` without paths (small internal files such as `.tether.yaml`).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, SyntaxError> {
    serde_yaml::from_str(text).map_err(|e| SyntaxError {
        pos: e
            .location()
            .map(|l| Pos {
                line: l.line(),
                col: l.column(),
            })
            .unwrap_or(Pos { line: 1, col: 1 }),
        message: clean_message(&e.to_string()),
    })
}

/// serde_yaml appends " at line L column C" to messages; the position is reported separately.
/// Some scanner errors say "at position N" (a byte offset) in their message and give the
/// document's start as their location (a control character, for one): the line and column
/// of that offset.
fn at_offset(text: &str, message: &str) -> Option<Pos> {
    let rest = &message[message.find("at position ")? + "at position ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let offset: usize = digits.parse().ok()?;
    let before = text.get(..offset.min(text.len()))?;
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(Pos { line, col })
}

fn clean_message(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

enum Frame {
    Map {
        prefix: String,
        key: Option<(String, Pos)>,
    },
    Seq {
        prefix: String,
        next: usize,
    },
}

#[derive(Default)]
struct Indexer {
    docs: Vec<(Pos, PathIndex)>,
    stack: Vec<Frame>,
    current: PathIndex,
    start: Pos,
}

impl Indexer {
    /// The path of the node that starts now, recording its position; advances the parent.
    fn enter(&mut self, mark: Pos) -> String {
        match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { prefix, next }) => {
                let path = format!("{prefix}[{next}]");
                *next += 1;
                self.current.positions.insert(path.clone(), mark);
                path
            }
            Some(Frame::Map { prefix, key }) => match key.take() {
                Some((k, kpos)) => {
                    let path = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    self.current.positions.insert(path.clone(), kpos);
                    path
                }
                // A non-scalar key: index nothing beneath it.
                None => format!("{prefix}.?"),
            },
        }
    }

    /// True when the scalar about to be seen is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos {
            line: mark.line(),
            col: mark.col() + 1,
        };
        match ev {
            Event::DocumentStart => {
                self.start = pos;
                self.current = PathIndex::default();
                self.stack.clear();
            }
            Event::DocumentEnd => {
                let index = std::mem::take(&mut self.current);
                self.docs.push((self.start, index));
            }
            Event::Scalar(text, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some((text, pos));
                    }
                } else {
                    self.enter(pos);
                }
            }
            Event::Alias(_) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(("*".into(), pos));
                    }
                } else {
                    self.enter(pos);
                }
            }
            Event::MappingStart(..) => {
                let prefix = self.enter(pos);
                self.stack.push(Frame::Map { prefix, key: None });
            }
            Event::SequenceStart(..) => {
                let prefix = self.enter(pos);
                self.stack.push(Frame::Seq { prefix, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_with_only_an_offset_names_its_line() {
        let text = "a: 1\nb: 2\nc: \"x\u{1}y\"\n";
        let Err(e) = super::documents(text) else {
            panic!("a control character is refused")
        };
        assert_eq!((e.pos.line, e.pos.col), (3, 6), "{}", e.message);
    }

    use super::*;

    #[test]
    fn indexes_keys_and_items_across_documents() {
        let text = "a: 1\nspec:\n  entries:\n    K1: v\n    1BAD: v\n  list:\n    - x\n    - {y: 2}\n---\nb: 2\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let idx = &docs[0].index;
        assert_eq!(
            idx.locate("spec.entries.1BAD"),
            Some(Pos { line: 5, col: 5 })
        );
        assert_eq!(idx.locate("spec.list[1]"), Some(Pos { line: 8, col: 7 }));
        assert_eq!(idx.locate("spec.list[1].y"), Some(Pos { line: 8, col: 8 }));
        assert_eq!(
            idx.locate("spec.entries.MISSING"),
            Some(Pos { line: 3, col: 3 })
        );
        assert_eq!(docs[1].index.locate("b"), Some(Pos { line: 10, col: 1 }));
    }

    #[test]
    fn syntax_error_is_one_error_with_position() {
        let err = documents("a: [1,\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
        assert!(!err.message.contains(" at line "), "{}", err.message);
    }

    #[test]
    fn empty_documents_are_skipped() {
        assert_eq!(documents("---\n---\na: 1\n").unwrap().len(), 1);
        assert_eq!(documents("").unwrap().len(), 0);
        assert_eq!(documents("# only a comment\n").unwrap().len(), 0);
    }
}
