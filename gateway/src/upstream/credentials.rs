//! What a remote target is sent in `Authorization`: nothing, the caller's own token (only for
//! `passthrough`), a static token from a file (re-read when the file changes) or the gateway's
//! own Entra ID token (azure_identity, cached until shortly before it expires).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use azure_core::credentials::TokenCredential;
use azure_core::time::{Duration as AzureDuration, OffsetDateTime};
use fhirgate_engine::Error as FhirError;

use crate::config::TargetConfig;
use crate::error::GatewayError;

/// A target's credentials.
pub enum Credentials {
    None,
    Passthrough,
    BearerFile(BearerFile),
    Azure(AzureToken),
}

impl Credentials {
    /// Checks and prepares the configured credentials (reads the bearer file once).
    pub fn new(config: &TargetConfig) -> Result<Self, GatewayError> {
        let err = |m: String| GatewayError::Config(format!("target `{}`: {m}", config.id));
        match config.credentials.as_str() {
            "none" => Ok(Self::None),
            "passthrough" => Ok(Self::Passthrough),
            "bearer-file" => {
                let path = config
                    .bearer_file
                    .clone()
                    .ok_or_else(|| err("`bearer_file` is needed for `bearer-file`".into()))?;
                let (modified, token) = read_token(&path).map_err(err)?;
                Ok(Self::BearerFile(BearerFile {
                    path,
                    current: Mutex::new((modified, token)),
                    checked: Mutex::new(Instant::now()),
                }))
            }
            "azure" => Ok(Self::Azure(AzureToken::new(config).map_err(err)?)),
            other => {
                Err(err(format!("`credentials` `{other}` is not one of `none`, `passthrough`, `bearer-file`, `azure`")))
            }
        }
    }

    /// The `Authorization` value for one request, if any. `caller_token` is used only for
    /// `passthrough`.
    pub async fn authorization(&self, target: &str, caller_token: Option<&str>) -> Result<Option<String>, FhirError> {
        match self {
            Self::None => Ok(None),
            Self::Passthrough => Ok(caller_token.map(|t| format!("Bearer {t}"))),
            Self::BearerFile(file) => Ok(Some(format!("Bearer {}", file.token(target)))),
            Self::Azure(azure) => azure.token(target).await.map(|t| Some(format!("Bearer {t}"))),
        }
    }
}

/// A static bearer token in a file, re-read whenever the file's modification time changes.
pub struct BearerFile {
    path: PathBuf,
    current: Mutex<(Option<SystemTime>, String)>,
    /// When the file was last looked at: at most once per [`BEARER_FILE_CHECK`], not on every
    /// request (a `stat` per proxied request showed in the profile).
    checked: Mutex<Instant>,
}

/// How often the bearer file is checked for a new token.
const BEARER_FILE_CHECK: Duration = Duration::from_secs(1);

impl BearerFile {
    fn token(&self, target: &str) -> String {
        let due = match self.checked.lock() {
            Ok(mut checked) if checked.elapsed() >= BEARER_FILE_CHECK => {
                *checked = Instant::now();
                true
            }
            _ => false,
        };
        let modified = if due { std::fs::metadata(&self.path).and_then(|m| m.modified()).ok() } else { None };
        let mut current = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if modified.is_some() && modified != current.0 {
            match read_token(&self.path) {
                Ok(fresh) => {
                    tracing::info!(target_id = target, "bearer token file changed, token reloaded");
                    *current = fresh;
                }
                Err(e) => {
                    tracing::warn!(target_id = target, "bearer token file unreadable, keeping the last token: {e}")
                }
            }
        }
        current.1.clone()
    }
}

fn read_token(path: &PathBuf) -> Result<(Option<SystemTime>, String), String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text = std::fs::read_to_string(path).map_err(|e| format!("`bearer_file` `{}`: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() || token.contains(['\r', '\n']) {
        return Err(format!("`bearer_file` `{}` must hold one non-empty token", path.display()));
    }
    Ok((modified, token.to_owned()))
}

/// The gateway's own Entra ID token for `azure_scope`.
pub struct AzureToken {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    cached: tokio::sync::Mutex<Option<(String, OffsetDateTime)>>,
    /// How long a request waits for a token (queueing behind another request's fetch
    /// included): the target's `total_timeout_ms`.
    wait: Duration,
}

/// Retries of a failed token request (the SDK's default is 8 over up to a minute).
const TOKEN_RETRIES: u32 = 3;

/// A token is renewed this long before it expires.
const RENEW_BEFORE_SECONDS: i64 = 120;

impl AzureToken {
    /// The credential of a target's `azure_*` settings (also made for `[blob]`).
    pub fn new(config: &TargetConfig) -> Result<Self, String> {
        use azure_identity::{
            ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential, ManagedIdentityCredential,
            ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
            WorkloadIdentityCredentialOptions,
        };
        let scope = config.azure_scope.clone().ok_or("`azure_scope` is needed for `azure`")?;
        let sdk = |e: azure_core::Error| format!("azure credential `{}`: {e}", config.azure_auth);
        let retry = azure_core::http::ExponentialRetryOptions { max_retries: TOKEN_RETRIES, ..Default::default() };
        let mut client_options = azure_core::http::ClientOptions {
            retry: azure_core::http::RetryOptions::exponential(retry),
            ..Default::default()
        };
        if let Some(authority) = &config.azure_authority {
            let mut custom = azure_core::cloud::CustomConfiguration::default();
            custom.authority_host = authority.clone();
            client_options.cloud = Some(Arc::new(custom.into()));
        }
        let credential: Arc<dyn TokenCredential> = match config.azure_auth.as_str() {
            "managed-identity" => ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: config.azure_client_id.clone().map(UserAssignedId::ClientId),
                client_options,
            }))
            .map_err(sdk)?,
            "workload-identity" => {
                let mut options = WorkloadIdentityCredentialOptions {
                    client_id: config.azure_client_id.clone(),
                    tenant_id: config.azure_tenant_id.clone(),
                    ..Default::default()
                };
                options.credential_options.client_options = client_options;
                WorkloadIdentityCredential::new(Some(options)).map_err(sdk)?
            }
            "client-secret" => {
                let tenant =
                    config.azure_tenant_id.as_deref().ok_or("`azure_tenant_id` is needed for `client-secret`")?;
                let client = config.azure_client_id.clone().ok_or("`azure_client_id` is needed for `client-secret`")?;
                let file = config
                    .azure_client_secret_file
                    .as_ref()
                    .ok_or("`azure_client_secret_file` is needed for `client-secret`")?;
                let secret = std::fs::read_to_string(file)
                    .map_err(|e| format!("`azure_client_secret_file` `{}`: {e}", file.display()))?;
                ClientSecretCredential::new(
                    tenant,
                    client,
                    secret.trim().to_owned().into(),
                    Some(ClientSecretCredentialOptions { client_options }),
                )
                .map_err(sdk)?
            }
            "developer-tools" => DeveloperToolsCredential::new(None).map_err(sdk)?,
            other => {
                return Err(format!(
                    "`azure_auth` `{other}` is not one of `managed-identity`, `workload-identity`, `client-secret`, \
                     `developer-tools`"
                ));
            }
        };
        let wait = Duration::from_millis(config.total_timeout_ms.max(1));
        Ok(Self { credential, scope, cached: tokio::sync::Mutex::new(None), wait })
    }

    /// The cached token, or a fresh one; at most [`Self::wait`].
    /// (`target` names what it is for in the logs.)
    async fn token(&self, target: &str) -> Result<String, FhirError> {
        tokio::time::timeout(self.wait, self.cached_or_fetched(target)).await.unwrap_or_else(|_| {
            tracing::warn!(target_id = target, "no Entra ID token for the remote target in time");
            Err(FhirError::StoreUnavailable("the remote FHIR server's credentials are not available".into()))
        })
    }

    async fn cached_or_fetched(&self, target: &str) -> Result<String, FhirError> {
        let mut cached = self.cached.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some((token, expires)) = cached.as_ref()
            && *expires - now > AzureDuration::seconds(RENEW_BEFORE_SECONDS)
        {
            return Ok(token.clone());
        }
        let fresh = self.credential.get_token(&[self.scope.as_str()], None).await.map_err(|e| {
            tracing::warn!(target_id = target, "no Entra ID token for the remote target: {e}");
            FhirError::StoreUnavailable("the remote FHIR server's credentials are not available".into())
        })?;
        let token = fresh.token.secret().to_owned();
        *cached = Some((token.clone(), fresh.expires_on));
        Ok(token)
    }
}

/// Blob Storage (`[blob]` with an Entra ID credential) asks for the gateway's token this way.
#[async_trait::async_trait]
impl fhirgate_engine::bulk::blob::TokenSource for AzureToken {
    async fn token(&self) -> Result<String, FhirError> {
        AzureToken::token(self, "blob").await
    }
}
