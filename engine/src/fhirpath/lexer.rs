//! Splits a FHIRPath expression into tokens; comments (`//`, `/* */`) and whitespace dropped.

use super::error::{FhirPathError, Result};

/// A token with its byte offset.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// A name or keyword (`name`, `where`, `and`, `true`).
    Ident(String),
    /// A `` `delimited` `` name, never a keyword.
    Quoted(String),
    Str(String),
    Number(String),
    /// `@2012-04-15T10:00`, without the `@`.
    DateTime(String),
    /// `@T14:30`, without the `@T`.
    Time(String),
    /// `%name` or `` %`name` `` or `%'name'`, without the `%`.
    Variable(String),
    /// `$this`, `$index`, `$total`, without the `$`.
    Special(String),
    Symbol(&'static str),
}

const SYMBOLS: [&str; 20] =
    ["<=", ">=", "!=", "!~", ".", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "&", "|", "=", "~"];

/// Tokenizes `input`.
pub(super) fn tokenize(input: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &input[i..];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").ok_or_else(|| FhirPathError::syntax("unterminated comment"))?;
            i += end + 4;
        } else if c == b'\'' || c == b'`' {
            let (text, len) = quoted(rest, c)?;
            tokens.push(if c == b'\'' { Token::Str(text) } else { Token::Quoted(text) });
            i += len;
        } else if c.is_ascii_digit() {
            let mut end = rest.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
            if rest[end..].starts_with('.') && rest[end + 1..].starts_with(|c: char| c.is_ascii_digit()) {
                end += 1 + rest[end + 1..].bytes().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len() - end - 1);
            }
            tokens.push(Token::Number(rest[..end].to_owned()));
            i += end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let end = rest.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_')).unwrap_or(rest.len());
            tokens.push(Token::Ident(rest[..end].to_owned()));
            i += end;
        } else if c == b'@' {
            let (token, len) = temporal(&rest[1..])?;
            tokens.push(token);
            i += len + 1;
        } else if c == b'%' || c == b'$' {
            let after = &rest[1..];
            let (name, len) = match after.bytes().next() {
                Some(q @ (b'`' | b'\'')) if c == b'%' => quoted(after, q)?,
                _ => {
                    let end = after
                        .bytes()
                        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                        .unwrap_or(after.len());
                    (after[..end].to_owned(), end)
                }
            };
            if name.is_empty() {
                return Err(FhirPathError::syntax(format!("expected a name after `{}`", c as char)));
            }
            tokens.push(if c == b'%' { Token::Variable(name) } else { Token::Special(name) });
            i += len + 1;
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
            tokens.push(Token::Symbol(symbol));
            i += symbol.len();
        } else if rest.starts_with('<') || rest.starts_with('>') {
            tokens.push(Token::Symbol(if c == b'<' { "<" } else { ">" }));
            i += 1;
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            return Err(FhirPathError::syntax(format!("unexpected character `{ch}` at {i}")));
        }
    }
    Ok(tokens)
}

/// A quoted string or name starting at `rest[0]`; returns the unescaped text and the length.
fn quoted(rest: &str, quote: u8) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, ch)) = chars.next() {
        match ch {
            _ if ch as u32 == u32::from(quote) => return Ok((out, i + 1)),
            '\\' => {
                let (_, esc) = chars.next().ok_or_else(|| FhirPathError::syntax("unterminated string"))?;
                match esc {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| FhirPathError::syntax(format!("invalid escape `\\u{hex}`")))?;
                        out.push(code);
                    }
                    other => out.push(other),
                }
            }
            _ => out.push(ch),
        }
    }
    Err(FhirPathError::syntax("unterminated string"))
}

/// A date, date-time or time literal after the `@`.
fn temporal(rest: &str) -> Result<(Token, usize)> {
    let b = rest.as_bytes();
    let digits = |from: usize, n: usize| b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit);
    let time_at = |mut i: usize| {
        if !digits(i, 2) {
            return i;
        }
        i += 2;
        for _ in 0..2 {
            if b.get(i) == Some(&b':') && digits(i + 1, 2) {
                i += 3;
            } else {
                return i;
            }
        }
        if b.get(i) == Some(&b'.') && digits(i + 1, 1) {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        i
    };
    if b.first() == Some(&b'T') {
        let end = time_at(1);
        if end == 1 {
            return Err(FhirPathError::syntax("invalid time literal"));
        }
        return Ok((Token::Time(rest[1..end].to_owned()), end));
    }
    if !digits(0, 4) {
        return Err(FhirPathError::syntax("invalid date literal"));
    }
    let mut i = 4;
    for _ in 0..2 {
        if b.get(i) == Some(&b'-') && digits(i + 1, 2) {
            i += 3;
        } else {
            break;
        }
    }
    if b.get(i) == Some(&b'T') {
        i = time_at(i + 1);
        if b.get(i) == Some(&b'Z') {
            i += 1;
        } else if matches!(b.get(i), Some(b'+' | b'-'))
            && digits(i + 1, 2)
            && b.get(i + 3) == Some(&b':')
            && digits(i + 4, 2)
        {
            i += 6;
        }
    }
    Ok((Token::DateTime(rest[..i].to_owned()), i))
}
