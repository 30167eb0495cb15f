//! The layers of a configuration as one tree of values, each value knowing
//! where it came from: YAML files (parsed with `saphyr`, positions kept),
//! `${VAR}` interpolation, `environments:` overlays and `TASKER__...`
//! environment variables.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use saphyr::{MarkedYaml, Scalar, ScalarStyle, YamlData, YamlLoader};
use serde_json::Value;

use super::error::{ConfigError, Origin};

/// One value of the tree with its origin.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: NodeValue,
    pub(crate) origin: Origin,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    Scalar(Value),
    /// A scalar as written in a file, before `${VAR}` interpolation
    /// ([`Node::interpolate`]) types it: only the layers selected are
    /// interpolated, so an overlay for another environment may name
    /// variables this one does not set.
    Raw(String, ScalarStyle),
    Seq(Vec<Node>),
    /// In document order; keys are unique (the parser refuses duplicates).
    Map(Vec<(String, Node)>),
}

/// The deepest nesting a configuration file may have (the schema needs 6).
const MAX_DEPTH: usize = 64;

impl Node {
    pub(crate) fn empty_map(origin: Origin) -> Node {
        Node {
            value: NodeValue::Map(Vec::new()),
            origin,
        }
    }

    /// Parses one YAML document; scalars stay as written until
    /// [`interpolate`](Self::interpolate).
    pub(crate) fn from_yaml(text: &str, path: &Path) -> Result<Node, ConfigError> {
        let path = Arc::new(path.to_owned());
        let docs = load(text).map_err(|e| ConfigError {
            origin: Origin::File {
                path: Arc::clone(&path),
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            key: String::new(),
            problem: format!("not valid YAML: {}", e.info()),
        })?;
        let at = |line: usize, column: usize| Origin::File {
            path: Arc::clone(&path),
            line,
            column,
        };
        match docs.len() {
            0 => Ok(Node::empty_map(at(1, 1))),
            1 => {
                let root = convert(&docs[0], &mut Vec::new(), &at)?;
                match root.value {
                    NodeValue::Map(_) => Ok(root),
                    NodeValue::Raw(text, _) if text.is_empty() || text == "~" || text == "null" => {
                        Ok(Node::empty_map(root.origin))
                    }
                    _ => Err(ConfigError {
                        origin: root.origin,
                        key: String::new(),
                        problem: "the configuration must be a mapping of sections \
                                  (`database:`, `engine:`, `api:`, `telemetry:`, `handlers:`, \
                                  `environments:`)"
                            .into(),
                    }),
                }
            }
            n => Err(ConfigError {
                origin: at(docs[1].span.start.line(), 1),
                key: String::new(),
                problem: format!(
                    "the file holds {n} YAML documents; keep one (remove the `---` separators)"
                ),
            }),
        }
    }

    /// Replaces `${VAR}` references in every scalar and types them (see
    /// [`interpolated_scalar`]); every unresolvable reference is an error
    /// at its line.
    pub(crate) fn interpolate(
        &mut self,
        vars: &dyn Fn(&str) -> Option<String>,
        path: &mut Vec<String>,
        errors: &mut Vec<ConfigError>,
    ) {
        match &mut self.value {
            NodeValue::Raw(text, style) => match interpolated_scalar(text, *style, vars) {
                Ok(value) => self.value = NodeValue::Scalar(value),
                Err(problem) => errors.push(ConfigError {
                    origin: self.origin.clone(),
                    key: path.join("."),
                    problem,
                }),
            },
            NodeValue::Scalar(_) => {}
            NodeValue::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    item.interpolate(vars, path, errors);
                    path.pop();
                }
            }
            NodeValue::Map(entries) => {
                for (key, node) in entries {
                    path.push(key.clone());
                    node.interpolate(vars, path, errors);
                    path.pop();
                }
            }
        }
    }

    /// Lays `other` over `self`: mappings merge key by key, anything else
    /// is replaced by the newer value.
    pub(crate) fn merge(&mut self, other: Node) {
        match (&mut self.value, other.value) {
            (NodeValue::Map(mine), NodeValue::Map(theirs)) => {
                for (key, node) in theirs {
                    match mine.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, existing)) => existing.merge(node),
                        None => mine.push((key, node)),
                    }
                }
            }
            (_, value) => {
                *self = Node {
                    value,
                    origin: other.origin,
                };
            }
        }
    }

    /// Removes and returns the value at `key` of a mapping.
    pub(crate) fn take(&mut self, key: &str) -> Option<Node> {
        let NodeValue::Map(entries) = &mut self.value else {
            return None;
        };
        let position = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(position).1)
    }

    /// The value at `key` of a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, n)| n),
            _ => None,
        }
    }

    /// The keys of a mapping, in order.
    pub(crate) fn keys(&self) -> Vec<&str> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Sets `value` at `path`, creating mappings on the way (and replacing
    /// a non-mapping in the way).
    pub(crate) fn set(&mut self, path: &[String], value: Node) {
        let Some((first, rest)) = path.split_first() else {
            *self = value;
            return;
        };
        if !matches!(self.value, NodeValue::Map(_)) {
            *self = Node::empty_map(value.origin.clone());
        }
        let NodeValue::Map(entries) = &mut self.value else {
            unreachable!("made a mapping above");
        };
        let position = match entries.iter().position(|(k, _)| k == first) {
            Some(position) => position,
            None => {
                entries.push((first.clone(), Node::empty_map(value.origin.clone())));
                entries.len() - 1
            }
        };
        entries[position].1.set(rest, value);
    }

    /// The origin of the node at exactly `path`, if some layer set it.
    pub(crate) fn origin_at(&self, path: &[String]) -> Option<&Origin> {
        let mut node = self;
        for segment in path {
            node = match &node.value {
                NodeValue::Map(entries) => &entries.iter().find(|(k, _)| k == segment)?.1,
                NodeValue::Seq(items) => items.get(segment.parse::<usize>().ok()?)?,
                NodeValue::Scalar(_) | NodeValue::Raw(..) => return None,
            };
        }
        Some(&node.origin)
    }

    /// The origin of the deepest node along `path` (a serde path such as
    /// `engine.lease` or `handlers.a/b.steps.x`).
    pub(crate) fn origin_of(&self, path: &[String]) -> &Origin {
        let mut node = self;
        for segment in path {
            let next = match &node.value {
                NodeValue::Map(entries) => entries.iter().find(|(k, _)| k == segment).map(|e| &e.1),
                NodeValue::Seq(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                NodeValue::Scalar(_) | NodeValue::Raw(..) => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        &node.origin
    }

    /// The tree as JSON, for serde.
    pub(crate) fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Scalar(v) => v.clone(),
            NodeValue::Raw(text, style) => scalar_value(text, *style),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, n)| (k.clone(), n.to_json()))
                    .collect(),
            ),
        }
    }

    /// Every leaf with its dotted path, in order (for `config show`).
    pub(crate) fn leaves(&self, prefix: &str, out: &mut Vec<(String, Origin)>) {
        match &self.value {
            NodeValue::Map(entries) if !entries.is_empty() => {
                for (key, node) in entries {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    node.leaves(&path, out);
                }
            }
            _ => out.push((prefix.to_owned(), self.origin.clone())),
        }
    }
}

/// Parses with scalars left as written (`early_parse(false)`), so that
/// interpolation happens before a plain scalar is typed.
fn load(text: &str) -> Result<Vec<MarkedYaml<'_>>, saphyr::ScanError> {
    let mut loader = YamlLoader::<MarkedYaml<'_>>::default();
    loader.early_parse(false);
    // Anchors may not expand a small file into a huge tree.
    loader.alias_limit(10_000);
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    parser.load(&mut loader, true)?;
    if let Some(e) = loader.error() {
        return Err(e.clone());
    }
    Ok(loader.into_documents())
}

fn convert(
    yaml: &MarkedYaml<'_>,
    path: &mut Vec<String>,
    at: &dyn Fn(usize, usize) -> Origin,
) -> Result<Node, ConfigError> {
    let origin = at(yaml.span.start.line(), yaml.span.start.col() + 1);
    let key = path.join(".");
    let error = |problem: String| ConfigError {
        origin: origin.clone(),
        key: key.clone(),
        problem,
    };
    if path.len() > MAX_DEPTH {
        return Err(error(format!("nested more than {MAX_DEPTH} levels deep")));
    }
    let value = match &yaml.data {
        YamlData::Value(scalar) => NodeValue::Scalar(scalar_json(scalar)),
        YamlData::Representation(text, style, _) => NodeValue::Raw(text.to_string(), *style),
        YamlData::Sequence(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                let node = convert(item, path, at);
                path.pop();
                nodes.push(node?);
            }
            NodeValue::Seq(nodes)
        }
        YamlData::Mapping(entries) => {
            let mut nodes = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key_text = match &key.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(scalar) => match scalar_json(scalar) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                    YamlData::Representation(text, _, _) => text.to_string(),
                    _ => {
                        return Err(error(
                            "a mapping key must be a plain name, not a list or mapping".into(),
                        ))
                    }
                };
                path.push(key_text.clone());
                let node = convert(value, path, at);
                path.pop();
                // A key's value is reported at the key: the line a reader
                // looks for, and the same for scalars and sections.
                let mut node = node?;
                node.origin = at(key.span.start.line(), key.span.start.col() + 1);
                nodes.push((key_text, node));
            }
            NodeValue::Map(nodes)
        }
        YamlData::Tagged(_, inner) => return convert(inner, path, at),
        YamlData::Alias(_) | YamlData::BadValue => {
            return Err(error(
                "a value that cannot be read (an unknown alias or a malformed scalar)".into(),
            ))
        }
    };
    Ok(Node { value, origin })
}

/// A plain scalar's text read as YAML would read it (`8` a number, `true`
/// a boolean, `~` null); quoted scalars stay strings.
pub(crate) fn scalar_value(text: &str, style: ScalarStyle) -> Value {
    match Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text), style, None) {
        Some(scalar) => scalar_json(&scalar),
        None => Value::String(text.to_owned()),
    }
}

fn scalar_json(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) => serde_json::Number::from_f64(f.into_inner())
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

/// A scalar with its `${VAR}` references replaced, then typed: a plain
/// scalar is read as YAML reads it *after* interpolation (so `${PORT}`
/// gives a number), a quoted one stays a string.
fn interpolated_scalar(
    text: &str,
    style: ScalarStyle,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    let text = interpolate(text, vars)?;
    Ok(scalar_value(&text, style))
}

/// Replaces `${VAR}` and `${VAR:-default}` (the default when `VAR` is unset
/// or empty); `$$` is a literal `$`. An unset `VAR` without a default is an
/// error naming it.
pub(crate) fn interpolate<'a>(
    text: &'a str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Cow<'a, str>, String> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                return Err(format!(
                    "`${{` without its closing `}}` in {text:?}; write `${{VAR}}`, or `$$` for a literal `$`"
                ));
            };
            let reference = &inner[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if !valid_var_name(name) {
                return Err(format!(
                    "`${{{reference}}}` does not name an environment variable; write `${{NAME}}` \
                     or `${{NAME:-default}}` with letters, digits and `_`"
                ));
            }
            match (vars(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => match vars(name) {
                    Some(empty) => out.push_str(&empty),
                    None => {
                        return Err(format!(
                            "environment variable {name} is not set; set it, or give a default: \
                             `${{{name}:-value}}`"
                        ))
                    }
                },
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "USER_PW" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8081".into()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_replaces_references_and_defaults() {
        assert_eq!(interpolate("plain", &vars).unwrap(), "plain");
        assert_eq!(
            interpolate("postgres://u:${USER_PW}@db/x", &vars).unwrap(),
            "postgres://u:s3cret@db/x"
        );
        assert_eq!(
            interpolate("${MISSING:-fallback}", &vars).unwrap(),
            "fallback"
        );
        assert_eq!(
            interpolate("${EMPTY:-fallback}", &vars).unwrap(),
            "fallback"
        );
        assert_eq!(interpolate("${EMPTY}", &vars).unwrap(), "");
        assert_eq!(
            interpolate("cost: $$5 and $x", &vars).unwrap(),
            "cost: $5 and $x"
        );
        assert_eq!(interpolate("${MISSING:-}", &vars).unwrap(), "");
    }

    #[test]
    fn interpolation_errors_say_what_to_write() {
        let e = interpolate("${MISSING}", &vars).unwrap_err();
        assert_eq!(
            e,
            "environment variable MISSING is not set; set it, or give a default: `${MISSING:-value}`"
        );
        let e = interpolate("${OPEN", &vars).unwrap_err();
        assert!(e.contains("without its closing"), "{e}");
        let e = interpolate("${9lives}", &vars).unwrap_err();
        assert!(e.contains("does not name an environment variable"), "{e}");
    }

    #[test]
    fn plain_scalars_are_typed_after_interpolation_and_quoted_ones_stay_strings() {
        let mut node = Node::from_yaml(
            "port: ${PORT}\nquoted: \"${PORT}\"\nflag: true\nnothing:\n",
            Path::new("t.yaml"),
        )
        .unwrap();
        let mut errors = Vec::new();
        node.interpolate(&vars, &mut Vec::new(), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(
            node.to_json(),
            serde_json::json!({"port": 8081, "quoted": "8081", "flag": true, "nothing": null})
        );
    }

    #[test]
    fn merging_overlays_maps_and_replaces_the_rest() {
        let mut base =
            Node::from_yaml("a:\n  b: 1\n  c: [1, 2]\nd: x\n", Path::new("t.yaml")).unwrap();
        let overlay = Node::from_yaml("a:\n  c: [3]\n  e: 2\n", Path::new("o.yaml")).unwrap();
        base.merge(overlay);
        assert_eq!(
            base.to_json(),
            serde_json::json!({"a": {"b": 1, "c": [3], "e": 2}, "d": "x"})
        );
        let origin = base.origin_of(&["a".into(), "e".into()]).to_string();
        assert_eq!(origin, "o.yaml:3:3");
        assert_eq!(
            base.origin_of(&["a".into(), "b".into()]).to_string(),
            "t.yaml:2:3"
        );
    }

    #[test]
    fn yaml_errors_name_the_position() {
        let e = Node::from_yaml("a: [1, 2\n", Path::new("bad.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("bad.yaml:"), "{e}");
        assert!(e.to_string().contains("not valid YAML"), "{e}");
        let e = Node::from_yaml("a: 1\na: 2\n", Path::new("dup.yaml")).unwrap_err();
        assert!(e.to_string().contains("not valid YAML"), "{e}");
        let e = Node::from_yaml("- 1\n- 2\n", Path::new("list.yaml")).unwrap_err();
        assert!(e.to_string().contains("must be a mapping"), "{e}");
    }
}
