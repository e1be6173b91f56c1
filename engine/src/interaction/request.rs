//! The engine's view of an HTTP request: only what FHIR needs, independent of any HTTP server.

/// The HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Other(String),
}

impl Method {
    /// Parses a method name.
    pub fn parse(name: &str) -> Self {
        match name {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            other => Self::Other(other.to_string()),
        }
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Other(s) => s,
        }
    }
}

/// The request headers FHIR interactions read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub if_none_exist: Option<String>,
    pub prefer: Option<String>,
}

/// A FHIR request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path below the FHIR base, e.g. `Patient/123`.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub headers: RequestHeaders,
    pub body: Vec<u8>,
    /// The absolute FHIR base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
}

impl Request {
    /// A request with no query, headers or body (handy in tests).
    pub fn new(method: Method, path: &str, base_url: &str) -> Self {
        Self {
            method,
            path: path.trim_matches('/').to_string(),
            query: Vec::new(),
            headers: RequestHeaders::default(),
            body: Vec::new(),
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether `_pretty=true` was asked for.
    pub(crate) fn pretty(&self) -> bool {
        self.param("_pretty") == Some("true")
    }

    /// The `return` preference of the `Prefer` header.
    pub(crate) fn prefer_return(&self) -> PreferReturn {
        let Some(prefer) = &self.headers.prefer else { return PreferReturn::Representation };
        for part in prefer.split([',', ';']) {
            match part.trim().strip_prefix("return=").map(|v| v.trim_matches('"')) {
                Some("minimal") => return PreferReturn::Minimal,
                Some("OperationOutcome") => return PreferReturn::OperationOutcome,
                Some("representation") => return PreferReturn::Representation,
                _ => {}
            }
        }
        PreferReturn::Representation
    }

    /// An absolute URL below the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path)
    }
}

/// `Prefer: return=...` (<https://hl7.org/fhir/R4/http.html#ops>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreferReturn {
    Minimal,
    Representation,
    OperationOutcome,
}

/// Parses a query string (`a=1&b=x%20y`) into decoded pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-encodes a query component, leaving unreserved characters and the search syntax
/// (`: , | $ / *`) readable; the inverse of [`percent_decode`].
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:,|$/*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as a space) in a query component. Invalid escapes are kept as
/// they are; invalid UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("a=1&b=x%20y+z&c&d=%zz&e=%4"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into()),
                ("e".into(), "%4".into())
            ]
        );
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_encode("a b&c=é|x"), "a%20b%26c%3D%C3%A9|x");
        assert_eq!(percent_decode(&percent_encode("x y+z%")), "x y+z%");
    }

    #[test]
    fn prefer() {
        let mut r = Request::new(Method::Get, "Patient/1", "http://x");
        assert_eq!(r.prefer_return(), PreferReturn::Representation);
        r.headers.prefer = Some("return=minimal".into());
        assert_eq!(r.prefer_return(), PreferReturn::Minimal);
        r.headers.prefer = Some("handling=strict, return=OperationOutcome".into());
        assert_eq!(r.prefer_return(), PreferReturn::OperationOutcome);
    }
}
