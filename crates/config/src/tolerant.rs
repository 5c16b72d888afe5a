//! Reading on past a bad field, so that `switchboard check` can list every error of a file:
//! serde stops at the first one, so the bad field is set aside and the rest read again.

use serde_json::Value;
use serde_path_to_error::{Path, Segment};

/// Errors reported per file at most; the rest would only repeat the lesson.
pub(crate) const MAX_ERRORS: usize = 50;

/// What became of one deserialization error.
pub(crate) enum Step {
    /// Report it at `path`; `again` says whether reading on can find more.
    Report { path: Vec<String>, again: bool },
    /// A required field that an earlier error set aside: already reported.
    Consequence,
}

/// The fields set aside so far.
#[derive(Default)]
pub(crate) struct Reader {
    set_aside: Vec<Vec<String>>,
}

impl Reader {
    /// Takes the error `message` found at `path` and sets its field aside in `value`.
    pub(crate) fn step(&mut self, value: &mut Value, path: &Path, message: &str) -> Step {
        let mut path: Vec<String> = path.iter().filter_map(key).collect();
        if let Some(missing) = quoted(message, "missing field `") {
            let mut field = path.clone();
            field.push(missing.to_owned());
            if self.set_aside.contains(&field) {
                return Step::Consequence;
            }
            return Step::Report { path, again: false };
        }
        // An unknown field's error may name only the object that holds it.
        if let Some(unknown) = quoted(message, "unknown field `") {
            if path.last().map(String::as_str) != Some(unknown) {
                path.push(unknown.to_owned());
            }
        }
        let again = remove(value, &path);
        if again {
            self.set_aside.push(path.clone());
        }
        Step::Report { path, again }
    }
}

fn key(segment: &Segment) -> Option<String> {
    match segment {
        Segment::Seq { index } => Some(index.to_string()),
        Segment::Map { key } => Some(key.clone()),
        Segment::Enum { variant } => Some(variant.clone()),
        Segment::Unknown => None,
    }
}

/// The text between `prefix` and the next backtick.
fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

/// Removes the value at `path`; whether there was one.
fn remove(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut at = value;
    for part in parents {
        let next = match at {
            Value::Object(map) => map.get_mut(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    match at {
        Value::Object(map) => map.remove(last).is_some(),
        Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}
