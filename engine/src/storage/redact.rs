//! Store URLs as logs and error messages may show them: any password replaced by `***`.

/// The URL with its password (in the user info or a `password=` parameter) replaced by `***`,
/// for logs and error messages. Works on any store's URL; one that is not a URL comes back as is.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme) = out.find("://").map(|i| i + 3) {
        let authority_end = out[scheme..].find(['/', '?']).map_or(out.len(), |i| scheme + i);
        if let Some(at) = out[scheme..authority_end].rfind('@').map(|i| scheme + i) {
            if let Some(colon) = out[scheme..at].find(':').map(|i| scheme + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let mut params: Vec<String> = out[query + 1..].split('&').map(str::to_owned).collect();
        for param in &mut params {
            if param.starts_with("password=") {
                *param = "password=***".to_owned();
            }
        }
        out = format!("{}?{}", &out[..query], params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_url("mysql://u:secret@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact_url("mysql://u@h/db"), "mysql://u@h/db");
        assert_eq!(redact_url("postgres://u:p@ss@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact_url("postgres://h/db?user=a@b&password=x&sslmode=off"),
            "postgres://h/db?user=a@b&password=***&sslmode=off"
        );
        assert_eq!(redact_url("sqlite:./data/fhirgate.db"), "sqlite:./data/fhirgate.db");
        assert_eq!(
            redact_url("cosmos:https://acct.documents.azure.com:443/"),
            "cosmos:https://acct.documents.azure.com:443/"
        );
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}
