//! The primitives of [`Rewrite`](super::Rewrite): one id, one relative `Type/id` reference, and
//! every absolute URL on a base inside a string, in one direction ([`Way`]).
//!
//! Towards the target an id loses the prefix (an id without it is another target's:
//! [`Adjusted::Foreign`]); towards the client it gains it. A URL on the `from` base becomes one
//! on the `to` base, with the id right after `Type/` adjusted the same way.

use std::borrow::Cow;

use crate::definitions::Definitions;

/// Which way a rewrite goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// Client → target: prefixes are removed, the client base becomes the target's.
    ToTarget,
    /// Target → client: prefixes are added, the target base becomes the client's.
    ToClient,
}

/// What became of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Adjusted {
    /// The value as the other side must see it.
    Changed(String),
    /// Nothing in it to rewrite.
    Same,
    /// It names an id of another target (towards the target only).
    Foreign,
}

/// One direction of a [`Rewrite`](super::Rewrite).
#[derive(Debug, Clone, Copy)]
pub(super) struct Ids<'a> {
    pub(super) way: Way,
    pub(super) prefix: &'a str,
    /// The base URLs are written in on this side (no trailing `/`; `""`: none is rewritten).
    pub(super) from_base: &'a str,
    /// The base URLs get on the other side.
    pub(super) to_base: &'a str,
}

/// Whether `c` may appear in a FHIR id (`[A-Za-z0-9\-\.]`).
pub(super) fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// Whether `s` looks like an id (no `_history`, `$operation` or empty segment).
pub(super) fn is_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_id_char)
}

/// Whether `c`, right after a base URL, continues it (so the base was not matched whole):
/// `https://lab` must not match `https://lab2/...` nor `https://lab:8080/...`.
fn continues_url(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:@%".contains(c)
}

impl Ids<'_> {
    /// An id as the other side names it; `None` for another target's id (towards the target).
    pub(super) fn id(&self, id: &str) -> Option<String> {
        match self.way {
            Way::ToClient => Some(format!("{}{id}", self.prefix)),
            Way::ToTarget if self.prefix.is_empty() => Some(id.to_owned()),
            Way::ToTarget => id.strip_prefix(self.prefix).filter(|rest| !rest.is_empty()).map(str::to_owned),
        }
    }

    /// An id, as [`Adjusted`].
    pub(super) fn adjust_id(&self, id: &str) -> Adjusted {
        match self.id(id) {
            Some(new) if new == id => Adjusted::Same,
            Some(new) => Adjusted::Changed(new),
            None => Adjusted::Foreign,
        }
    }

    /// A relative `Type/id` (optionally `/_history/v` or any further path) whose type is a
    /// resource type: the id adjusted. Anything else is [`Adjusted::Same`].
    pub(super) fn relative(&self, reference: &str) -> Adjusted {
        let (head, tail) = match reference.find(['?', '#']) {
            Some(i) => reference.split_at(i),
            None => (reference, ""),
        };
        let mut segments = head.splitn(3, '/');
        let (Some(resource_type), Some(id)) = (segments.next(), segments.next()) else {
            return Adjusted::Same;
        };
        if !is_id(id) || !Definitions::r4().is_resource_type(resource_type) {
            return Adjusted::Same;
        }
        let rest = segments.next().map(|r| format!("/{r}")).unwrap_or_default();
        match self.adjust_id(id) {
            Adjusted::Changed(new) => Adjusted::Changed(format!("{resource_type}/{new}{rest}{tail}")),
            other => other,
        }
    }

    /// Whether `s` starts with the `from` base (whole).
    pub(super) fn on_base(&self, s: &str) -> bool {
        !self.from_base.is_empty()
            && s.strip_prefix(self.from_base).is_some_and(|rest| !rest.starts_with(continues_url))
    }

    /// Every occurrence of the `from` base in `text` replaced by the `to` base, the id of a
    /// `/Type/id` right after it adjusted. An occurrence naming another target's id is left as
    /// it is and reported in the second value.
    pub(super) fn urls<'t>(&self, text: &'t str) -> (Cow<'t, str>, bool) {
        let base = self.from_base;
        if base.is_empty() || !text.contains(base) {
            return (Cow::Borrowed(text), false);
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut foreign = false;
        let mut rest = text;
        while let Some(at) = rest.find(base) {
            out.push_str(&rest[..at]);
            let after = &rest[at + base.len()..];
            if after.starts_with(continues_url) {
                out.push_str(base);
                rest = after;
                continue;
            }
            let (path, consumed) = type_and_id(after);
            match path.map(|(resource_type, id)| (resource_type, self.adjust_id(id))) {
                Some((_, Adjusted::Foreign)) => {
                    foreign = true;
                    out.push_str(base);
                    out.push_str(&after[..consumed]);
                }
                Some((resource_type, Adjusted::Changed(id))) => {
                    out.push_str(self.to_base);
                    out.push_str(&format!("/{resource_type}/{id}"));
                }
                _ => {
                    out.push_str(self.to_base);
                    out.push_str(&after[..consumed]);
                }
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        (Cow::Owned(out), foreign)
    }
}

/// `/Type/id` at the start of `after` (the text following a base): the type and id when the
/// type is a resource type and the id an id, and how many bytes they take.
fn type_and_id(after: &str) -> (Option<(&str, &str)>, usize) {
    let Some(path) = after.strip_prefix('/') else { return (None, 0) };
    let type_len = path.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(path.len());
    let resource_type = &path[..type_len];
    let Some(id_part) = path[type_len..].strip_prefix('/') else { return (None, 0) };
    let id_len = id_part.find(|c: char| !is_id_char(c)).unwrap_or(id_part.len());
    let id = &id_part[..id_len];
    if id.is_empty() || !Definitions::r4().is_resource_type(resource_type) {
        return (None, 0);
    }
    (Some((resource_type, id)), 1 + type_len + 1 + id_len)
}
