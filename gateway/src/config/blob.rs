//! `[blob]`: the Azure Blob Storage account of bulk jobs: where `$export` writes its files (and
//! `$import` its error reports) when `export.blob_container` is set, and whose containers
//! `import.input_containers` lets `$import` read. In production the gateway authenticates with
//! its managed identity (`auth = "managed-identity"`, the identity needs *Storage Blob Data
//! Contributor* on the export container and *Storage Blob Data Reader* on the input ones);
//! `shared-key` (the account key in a file) is for Azurite, the local emulator.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use fhirgate_engine::bulk::blob::{Account, Auth};
use serde::{Deserialize, Serialize};

use super::{Config, TargetConfig};

/// `[blob]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// The account's Blob endpoint (`https://ACCOUNT.blob.core.windows.net`; Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`). Unset: no Blob Storage.
    pub endpoint: Option<String>,
    /// The account name; default: the endpoint's first host label (Azurite: its path).
    pub account: Option<String>,
    /// `managed-identity` (default), `workload-identity`, `client-secret`, `developer-tools`
    /// (Entra ID tokens for `https://storage.azure.com/.default`, as for remote targets), or
    /// `shared-key` (the account key, from `shared_key_file`).
    pub auth: String,
    /// A user-assigned identity's client id (or the app of `workload-identity`/`client-secret`).
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Another Entra ID authority host (sovereign clouds, tests).
    pub authority: Option<String>,
    /// `shared-key`: a file holding the base64 account key.
    pub shared_key_file: Option<PathBuf>,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            account: None,
            auth: "managed-identity".into(),
            client_id: None,
            tenant_id: None,
            client_secret_file: None,
            authority: None,
            shared_key_file: None,
        }
    }
}

/// The account name an endpoint implies: `https://NAME.blob.…` or `http://host:port/NAME`.
fn account_name(endpoint: &str) -> Option<String> {
    let rest = endpoint.split_once("://")?.1.trim_end_matches('/');
    match rest.split_once('/') {
        Some((_, path)) if !path.is_empty() => Some(path.to_owned()),
        _ => rest.split('.').next().filter(|n| !n.is_empty()).map(str::to_owned),
    }
}

impl Config {
    /// The Blob Storage account of bulk jobs, credentials ready; `None` without an endpoint.
    pub fn blob_account(&self) -> Result<Option<Arc<Account>>, String> {
        let blob = &self.blob;
        let Some(endpoint) = blob.endpoint.as_deref() else { return Ok(None) };
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(format!("`blob.endpoint` `{endpoint}` is not an http(s) URL"));
        }
        let name = blob.account.clone().or_else(|| account_name(endpoint));
        let name = name.ok_or_else(|| format!("`blob.account` is needed for endpoint `{endpoint}`"))?;
        let auth = if blob.auth == "shared-key" {
            let file = blob.shared_key_file.as_ref().ok_or("`blob.shared_key_file` is needed for `shared-key`")?;
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("`blob.shared_key_file` `{}`: {e}", file.display()))?;
            let key = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| format!("`blob.shared_key_file` `{}` is not base64: {e}", file.display()))?;
            Auth::SharedKey(key)
        } else {
            let target = TargetConfig {
                id: "blob".into(),
                azure_auth: blob.auth.clone(),
                azure_scope: Some("https://storage.azure.com/.default".into()),
                azure_client_id: blob.client_id.clone(),
                azure_tenant_id: blob.tenant_id.clone(),
                azure_client_secret_file: blob.client_secret_file.clone(),
                azure_authority: blob.authority.clone(),
                ..TargetConfig::default()
            };
            Auth::Token(Arc::new(crate::upstream::AzureToken::new(&target).map_err(|e| format!("`blob.auth`: {e}"))?))
        };
        Ok(Some(Arc::new(Account::new(endpoint, &name, auth))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_make_the_account_or_say_what_is_missing() -> Result<(), String> {
        let mut config = Config::default();
        assert!(config.blob_account()?.is_none(), "no endpoint, no Blob Storage");
        config.blob.endpoint = Some("https://acct.blob.core.windows.net".into());
        let account = config.blob_account()?.ok_or("an account")?;
        assert_eq!((account.name.as_str(), matches!(account.auth, Auth::Token(_))), ("acct", true));
        config.blob.auth = "shared-key".into();
        assert!(config.blob_account().is_err_and(|e| e.contains("shared_key_file")));
        config.blob.auth = "password".into();
        assert!(config.blob_account().is_err_and(|e| e.contains("`blob.auth`")));
        config.blob.endpoint = Some("ftp://acct".into());
        assert!(config.blob_account().is_err());
        // Export to a container needs the account; import from containers too.
        let mut config = Config::default();
        config.export.blob_container = Some("exports".into());
        assert!(config.export_settings(None).is_err());
        config.import.input_containers = vec!["imports".into()];
        assert!(config.import.settings(None).is_err());
        Ok(())
    }

    #[test]
    fn account_names_come_from_the_endpoint() {
        assert_eq!(account_name("https://acct.blob.core.windows.net").as_deref(), Some("acct"));
        assert_eq!(account_name("http://127.0.0.1:10000/devstoreaccount1/").as_deref(), Some("devstoreaccount1"));
    }
}
