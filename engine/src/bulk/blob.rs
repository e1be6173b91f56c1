//! Azure Blob Storage over its REST API (<https://learn.microsoft.com/rest/api/storageservices/>),
//! on the blocking HTTP client the engine has already (`ureq`): block blobs written a block at a
//! time (Put Block, then Put Block List of the blocks committed so far: a block written again
//! under the same id replaces the uncommitted one, which is how a resumed job overwrites what it
//! wrote after its last checkpoint), read from an offset, listed by prefix and deleted.
//!
//! Authentication is either an Entra ID token from the front end ([`TokenSource`]: the gateway's
//! managed identity in production, scope `https://storage.azure.com/.default`) or Shared Key
//! (the account key; what Azurite, the local emulator, accepts over plain HTTP).
//!
//! (The Azure SDK's `azure_storage_blob` crate needs a newer `azure_core` than the Cosmos DB SDK
//! the tree pins; the half-dozen calls used here do not justify a second Azure core.)

use std::io::Read;
use std::sync::Arc;

use base64::Engine as _;

use crate::error::{Error, Result};

/// The REST API version every request names (supported by Azure and by Azurite).
const VERSION: &str = "2021-08-06";

/// An Entra ID access token for Azure Storage, from the front end's credential.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> Result<String>;
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// An Entra ID bearer token (managed identity, workload identity, ...).
    Token(Arc<dyn TokenSource>),
    /// Shared Key: the account's key (decoded).
    SharedKey(Vec<u8>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token(_) => "Token",
            Self::SharedKey(_) => "SharedKey",
        })
    }
}

/// A storage account's Blob endpoint.
#[derive(Debug, Clone)]
pub struct Account {
    /// `https://<account>.blob.core.windows.net` or, for Azurite, `http://127.0.0.1:10000/<account>`;
    /// no trailing slash.
    pub endpoint: String,
    /// The account name (Shared Key signs with it).
    pub name: String,
    pub auth: Auth,
}

/// Credentials resolved for one request or a few (a token fetched once).
#[derive(Clone)]
enum Signer {
    Bearer(String),
    SharedKey { account: String, key: Vec<u8> },
}

fn http(what: &str, e: impl std::fmt::Display) -> Error {
    Error::StoreUnavailable(format!("Blob Storage: {what}: {e}"))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Internal(format!("Blob Storage work stopped: {e}")))?
}

impl Account {
    /// The account with `endpoint` stripped of a trailing slash.
    pub fn new(endpoint: &str, name: &str, auth: Auth) -> Self {
        Self { endpoint: endpoint.trim_end_matches('/').to_owned(), name: name.to_owned(), auth }
    }

    async fn signer(&self) -> Result<Signer> {
        Ok(match &self.auth {
            Auth::Token(source) => Signer::Bearer(source.token().await?),
            Auth::SharedKey(key) => Signer::SharedKey { account: self.name.clone(), key: key.clone() },
        })
    }

    /// The container `name` of this account.
    pub fn container(self: &Arc<Self>, name: &str) -> Container {
        Container { account: Arc::clone(self), name: name.to_owned() }
    }

    /// The container and blob name `url` points at, when it is a blob of one of `containers` of
    /// this account: same endpoint, then the container, then a non-empty blob name with no
    /// query, fragment, `.`/`..` segment, backslash or percent-encoding (which could name
    /// another place once decoded).
    pub fn locate(&self, url: &str, containers: &[String]) -> Option<(String, String)> {
        let rest = url.strip_prefix(&self.endpoint)?.strip_prefix('/')?;
        let (container, blob) = rest.split_once('/')?;
        let clean = !blob.is_empty()
            && !blob.contains(['?', '#', '\\', '%'])
            && blob.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
        (clean && containers.iter().any(|c| c == container)).then(|| (container.to_owned(), blob.to_owned()))
    }
}

/// One blob container.
#[derive(Debug, Clone)]
pub struct Container {
    account: Arc<Account>,
    name: String,
}

/// The block id of block `n` (ids of one blob must all have the same length).
fn block_id(n: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("block-{n:010}"))
}

impl Container {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of blob `blob` (names made of URL-safe characters are used as they are).
    pub fn url(&self, blob: &str) -> String {
        format!("{}/{}/{blob}", self.account.endpoint, self.name)
    }

    /// Creates the container; one that exists already is fine.
    pub async fn create(&self) -> Result<()> {
        let (url, signer) = (format!("{}/{}", self.account.endpoint, self.name), self.account.signer().await?);
        blocking(move || {
            let status = send(&signer, "PUT", &url, &[("restype", "container")], &[], None)?.0;
            if status == 201 || status == 409 { Ok(()) } else { Err(http("creating the container", status)) }
        })
        .await
    }

    /// Writes `bytes` as block `n` of `blob` and commits blocks `0..=n` (what was committed
    /// before, and this one).
    pub async fn put_block(&self, blob: &str, n: u32, bytes: Vec<u8>) -> Result<()> {
        let (url, signer) = (self.url(blob), self.account.signer().await?);
        blocking(move || {
            let id = block_id(n);
            expect(
                send(&signer, "PUT", &url, &[("comp", "block"), ("blockid", &id)], &[], Some(bytes))?,
                201,
                "Put Block",
            )?;
            let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
            for i in 0..=n {
                list.push_str(&format!("<Latest>{}</Latest>", block_id(i)));
            }
            list.push_str("</BlockList>");
            let headers = [("x-ms-blob-content-type", "application/fhir+ndjson")];
            expect(
                send(&signer, "PUT", &url, &[("comp", "blocklist")], &headers, Some(list.into_bytes()))?,
                201,
                "Put Block List",
            )
        })
        .await
    }

    /// The first `len` bytes of `blob`.
    pub async fn read(&self, blob: &str, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let (url, signer) = (self.url(blob), self.account.signer().await?);
        blocking(move || {
            let range = format!("bytes=0-{}", len - 1);
            let (status, mut body) = send(&signer, "GET", &url, &[], &[("x-ms-range", &range)], None)?;
            if status != 200 && status != 206 {
                return Err(http("reading a blob", status));
            }
            let mut bytes = Vec::new();
            body.by_ref().take(len).read_to_end(&mut bytes).map_err(|e| http("reading a blob", e))?;
            Ok(bytes)
        })
        .await
    }

    /// The names of the blobs whose names start with `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let signer = self.account.signer().await?;
        let (base, prefix) = (format!("{}/{}", self.account.endpoint, self.name), prefix.to_owned());
        blocking(move || {
            let mut names = Vec::new();
            let mut marker = String::new();
            loop {
                let mut query = vec![("restype", "container"), ("comp", "list"), ("prefix", prefix.as_str())];
                if !marker.is_empty() {
                    query.push(("marker", marker.as_str()));
                }
                let (status, mut body) = send(&signer, "GET", &base, &query, &[], None)?;
                let mut xml = String::new();
                body.read_to_string(&mut xml).map_err(|e| http("listing blobs", e))?;
                if status != 200 {
                    return Err(http("listing blobs", status));
                }
                names.extend(elements(&xml, "Name"));
                marker = elements(&xml, "NextMarker").into_iter().next().unwrap_or_default();
                if marker.is_empty() {
                    return Ok(names);
                }
            }
        })
        .await
    }

    /// Removes every blob whose name starts with `prefix`.
    pub async fn remove_prefix(&self, prefix: &str) -> Result<()> {
        let names = self.list(prefix).await?;
        let signer = self.account.signer().await?;
        let container = self.clone();
        blocking(move || {
            for name in names {
                let status = send(&signer, "DELETE", &container.url(&name), &[], &[], None)?.0;
                if status != 202 && status != 404 {
                    return Err(http("deleting a blob", status));
                }
            }
            Ok(())
        })
        .await
    }
}

/// A reader of `url` from byte `offset`, authenticated as `account` (for import inputs; call on a
/// blocking thread with a signer got beforehand through [`Account::reader_auth`]).
pub struct Reader {
    signer: Signer,
}

impl Account {
    /// What reads blobs on a blocking thread afterwards (a token is fetched now).
    pub async fn reader_auth(&self) -> Result<Reader> {
        Ok(Reader { signer: self.signer().await? })
    }
}

impl Reader {
    /// The body of `url` from byte `offset` on.
    pub fn open(&self, url: &str, offset: u64) -> std::result::Result<Box<dyn Read + Send>, String> {
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 { &[("x-ms-range", &range)] } else { &[] };
        let (status, body) = send(&self.signer, "GET", url, &[], headers, None).map_err(|e| e.to_string())?;
        match status {
            200 | 206 => Ok(body),
            // Asked past its end: a resumed job that had read everything.
            416 => Ok(Box::new(std::io::empty())),
            other => Err(format!("cannot read blob `{url}`: HTTP {other}")),
        }
    }
}

fn expect(reply: (u16, Box<dyn Read + Send>), want: u16, what: &str) -> Result<()> {
    let (status, mut body) = reply;
    if status == want {
        return Ok(());
    }
    let mut text = String::new();
    let _ = body.by_ref().take(2048).read_to_string(&mut text);
    let code = elements(&text, "Code").into_iter().next().unwrap_or_default();
    Err(http(what, format!("HTTP {status} {code}")))
}

/// The texts of every `<tag>…</tag>` of a small XML answer (blob names are escaped XML text).
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    found
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// Sends one request, signed; its status and body.
fn send(
    signer: &Signer,
    method: &str,
    url: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<(u16, Box<dyn Read + Send>)> {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    all.push(("x-ms-date".into(), date));
    all.push(("x-ms-version".into(), VERSION.into()));
    let length = body.as_ref().map_or(0, Vec::len);
    let content_type = if body.is_some() { "application/octet-stream" } else { "" };
    let authorization = match signer {
        Signer::Bearer(token) => format!("Bearer {token}"),
        Signer::SharedKey { account, key } => {
            let signature = shared_key(account, key, method, url, query, &all, length, content_type)?;
            format!("SharedKey {account}:{signature}")
        }
    };
    let mut full = url.to_owned();
    for (n, (k, v)) in query.iter().enumerate() {
        full.push(if n == 0 { '?' } else { '&' });
        full.push_str(&format!("{k}={}", crate::interaction::percent_encode(v)));
    }
    let agent = agent();
    let mut request = ureq::http::Request::builder().method(method).uri(&full).header("Authorization", authorization);
    for (k, v) in &all {
        request = request.header(k.as_str(), v.as_str());
    }
    if body.is_some() {
        request = request.header("Content-Type", content_type);
    }
    let request = request.body(body.unwrap_or_default()).map_err(|e| http("building a request", e))?;
    let response = agent.run(request).map_err(|e| http(&format!("{method} {url}"), e))?;
    let status = response.status().as_u16();
    Ok((status, Box::new(response.into_body().into_reader())))
}

/// The Shared Key signature of a request
/// (<https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key>).
#[allow(clippy::too_many_arguments)]
fn shared_key(
    account: &str,
    key: &[u8],
    method: &str,
    url: &str,
    query: &[(&str, &str)],
    headers: &[(String, String)],
    length: usize,
    content_type: &str,
) -> Result<String> {
    let path = url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap_or("/");
    let mut ms: Vec<(String, &str)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    ms.sort();
    let length = if length == 0 { String::new() } else { length.to_string() };
    let mut text = format!("{method}\n\n\n{length}\n\n{content_type}\n\n\n\n\n\n\n");
    for (k, v) in ms {
        text.push_str(&format!("{k}:{v}\n"));
    }
    text.push_str(&format!("/{account}{path}"));
    let mut params: Vec<(String, &str)> = query.iter().map(|(k, v)| (k.to_ascii_lowercase(), *v)).collect();
    params.sort();
    for (k, v) in params {
        text.push_str(&format!("\n{k}:{v}"));
    }
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    Ok(base64::engine::general_purpose::STANDARD.encode(aws_lc_rs::hmac::sign(&key, text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_blobs_of_allowed_containers_are_located() {
        let account = Account::new("https://acct.blob.core.windows.net/", "acct", Auth::SharedKey(vec![1]));
        let allowed = vec!["imports".to_owned()];
        let at = |url: &str| account.locate(url, &allowed);
        assert_eq!(
            at("https://acct.blob.core.windows.net/imports/a/b.ndjson"),
            Some(("imports".into(), "a/b.ndjson".into()))
        );
        for refused in [
            "https://acct.blob.core.windows.net/other/a.ndjson",
            "https://acct.blob.core.windows.net/imports-evil/a.ndjson",
            "https://acct.blob.core.windows.net/imports/",
            "https://acct.blob.core.windows.net/imports/../other/a.ndjson",
            "https://acct.blob.core.windows.net/imports/a/%2e%2e/b",
            "https://acct.blob.core.windows.net/imports/a?comp=list",
            "https://acct.blob.core.windows.net.evil/imports/a.ndjson",
            "https://other.blob.core.windows.net/imports/a.ndjson",
            "http://acct.blob.core.windows.net/imports/a.ndjson",
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
    }

    #[test]
    fn xml_elements_are_read_and_unescaped() {
        let xml = "<Blobs><Blob><Name>a/1.ndjson</Name></Blob><Blob><Name>a&amp;b</Name></Blob></Blobs><NextMarker/>";
        assert_eq!(elements(xml, "Name"), vec!["a/1.ndjson".to_owned(), "a&b".to_owned()]);
        assert!(elements(xml, "NextMarker").is_empty());
    }

    #[test]
    fn block_ids_have_one_length() {
        assert_eq!(block_id(0).len(), block_id(u32::MAX).len());
    }
}
