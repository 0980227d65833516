//! Finds where a key sits in the config text. serde and the `config` crate
//! lose positions, so errors are mapped back to lines through toml_edit's
//! spans.

use std::fmt;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, TableLike, Value};

/// A key path such as `pools.local.max_workers` or `builders[0].steps[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub(crate) fn root() -> Self {
        Self::default()
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// This path followed by a provider's relative one.
    pub(crate) fn join(&self, rest: &burst_providers::config::Path) -> Self {
        use burst_providers::config::Segment;
        let mut segs = self.0.clone();
        segs.extend(rest.segments().iter().map(|s| match s {
            Segment::Key(k) => Seg::Key(k.clone()),
            Segment::Index(i) => Seg::Index(*i),
        }));
        Self(segs)
    }

    /// Plain dotted keys, no indexes (what an environment override can name).
    pub(crate) fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self(keys.into_iter().map(|k| Seg::Key(k.to_owned())).collect())
    }

    /// How many leading segments the two paths share.
    pub(crate) fn common_len(&self, other: &KeyPath) -> usize {
        self.0
            .iter()
            .zip(&other.0)
            .take_while(|(a, b)| a == b)
            .count()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    // Quote what TOML could not write bare, so the path stays unambiguous.
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parsed text of one config, for position lookups.
pub(crate) struct Locator<'t> {
    text: &'t str,
    doc: Option<ImDocument<&'t str>>,
}

impl<'t> Locator<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Line where `path` is written; when the path is only partly present
    /// (a defaulted key), the line of its deepest written ancestor.
    pub(crate) fn line_of(&self, path: &KeyPath) -> Option<usize> {
        self.find(path).map(|(_, line)| line)
    }

    /// How many leading segments of `path` are written in the text, and the
    /// line of the deepest one.
    pub(crate) fn find(&self, path: &KeyPath) -> Option<(usize, usize)> {
        let root = self.doc.as_ref()?.as_item();
        let mut node = Node::Item(root);
        let mut best = None;
        for (depth, seg) in path.0.iter().enumerate() {
            let (span, next) = match (seg, node) {
                (Seg::Key(k), node) => {
                    let Some(table) = node.table_like() else {
                        break;
                    };
                    let Some((key, item)) = table.get_key_value(k) else {
                        break;
                    };
                    (key.span().or_else(|| item.span()), Node::Item(item))
                }
                (Seg::Index(i), Node::Item(Item::ArrayOfTables(tables))) => {
                    let Some(table) = tables.get(*i) else { break };
                    (table.span(), Node::Table(table))
                }
                (Seg::Index(i), node) => {
                    let Some(value) = node.array().and_then(|a| a.get(*i)) else {
                        break;
                    };
                    (value.span(), Node::Value(value))
                }
            };
            if let Some(span) = span {
                best = Some((depth + 1, self.line_at(span.start)));
            }
            node = next;
        }
        best
    }

    /// The most specific key whose key or value text covers `offset`.
    pub(crate) fn key_at(&self, offset: usize) -> Option<KeyPath> {
        let doc = self.doc.as_ref()?;
        let mut best: Option<(KeyPath, usize)> = None;
        visit(
            Node::Item(doc.as_item()),
            &KeyPath::root(),
            &mut |path, span| {
                if !span.contains(&offset) && span.start != offset {
                    return;
                }
                let better = match &best {
                    None => true,
                    Some((p, len)) => {
                        path.len() > p.len() || (path.len() == p.len() && span.len() < *len)
                    }
                };
                if better {
                    best = Some((path.clone(), span.len()));
                }
            },
        );
        best.map(|(path, _)| path).filter(|p| p.len() > 0)
    }
}

/// Where `path` is written in `text` (1-based line), if anywhere.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn line_of(text: &str, path: &KeyPath) -> Option<usize> {
    Locator::new(text).line_of(path)
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Table(table) => Some(table),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }

    fn array(self) -> Option<&'a toml_edit::Array> {
        match self {
            Node::Item(item) => item.as_array(),
            Node::Value(value) => value.as_array(),
            Node::Table(_) => None,
        }
    }
}

/// Calls `f` with every key path in the document and each span that belongs
/// to it (the key itself, and the value or table header).
fn visit(node: Node<'_>, path: &KeyPath, f: &mut dyn FnMut(&KeyPath, Range<usize>)) {
    if let Some(table) = node.table_like() {
        for (name, _) in table.iter() {
            let Some((key, item)) = table.get_key_value(name) else {
                continue;
            };
            let child = path.key(name);
            for span in [key.span(), item.span()].into_iter().flatten() {
                f(&child, span);
            }
            visit(Node::Item(item), &child, f);
        }
        return;
    }
    if let Node::Item(Item::ArrayOfTables(tables)) = node {
        for (i, table) in tables.iter().enumerate() {
            let child = path.index(i);
            if let Some(span) = table.span() {
                f(&child, span);
            }
            visit(Node::Table(table), &child, f);
        }
        return;
    }
    if let Some(array) = node.array() {
        for (i, value) in array.iter().enumerate() {
            let child = path.index(i);
            if let Some(span) = value.span() {
                f(&child, span);
            }
            visit(Node::Value(value), &child, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# comment
[master]
http_listen = "127.0.0.1:1"

[pools.local]
provider = "local"
labels = ["a", "b"]
local.command = ["x"]

[[builders]]
name = "one"
steps = [{ name = "s", run = "true" }]

[[builders]]
name = "two"

[[builders.steps]]
name = "s"
run = "true"
"#;

    fn kp(s: &str) -> KeyPath {
        let mut path = KeyPath::root();
        for part in s.split('.') {
            match part.split_once('[') {
                Some((k, rest)) => {
                    path = path.key(k);
                    let n = rest.trim_end_matches(']').parse().unwrap_or(usize::MAX);
                    path = path.index(n);
                }
                None => path = path.key(part),
            }
        }
        path
    }

    #[test]
    fn finds_lines_of_keys() {
        assert_eq!(line_of(TEXT, &kp("master.http_listen")), Some(3));
        assert_eq!(line_of(TEXT, &kp("pools.local.provider")), Some(6));
        assert_eq!(line_of(TEXT, &kp("pools.local.labels[1]")), Some(7));
        assert_eq!(line_of(TEXT, &kp("pools.local.local.command")), Some(8));
        assert_eq!(line_of(TEXT, &kp("builders[0]")), Some(10));
        assert_eq!(line_of(TEXT, &kp("builders[0].steps[0].run")), Some(12));
        assert_eq!(line_of(TEXT, &kp("builders[1].name")), Some(15));
        assert_eq!(line_of(TEXT, &kp("builders[1].steps[0].run")), Some(19));
    }

    #[test]
    fn falls_back_to_the_deepest_written_ancestor() {
        assert_eq!(line_of(TEXT, &kp("pools.local.max_workers")), Some(5));
        assert_eq!(line_of(TEXT, &kp("nothing.here")), None);
        assert_eq!(line_of("not = [toml", &kp("not")), None);
    }

    #[test]
    fn finds_the_key_at_an_offset() {
        let loc = Locator::new(TEXT);
        let offset = TEXT.find("\"a\"").unwrap_or(0);
        assert_eq!(
            loc.key_at(offset).map(|p| p.to_string()),
            Some("pools.local.labels[0]".into())
        );
        let offset = TEXT.find("name = \"two\"").unwrap_or(0);
        assert_eq!(
            loc.key_at(offset).map(|p| p.to_string()),
            Some("builders[1].name".into())
        );
        assert_eq!(loc.key_at(0), None);
    }

    #[test]
    fn displays_paths_like_toml() {
        assert_eq!(
            kp("builders[0].steps[2].run").to_string(),
            "builders[0].steps[2].run"
        );
        assert_eq!(
            KeyPath::root().key("pools").key("a.b").to_string(),
            "pools.\"a.b\""
        );
    }
}
