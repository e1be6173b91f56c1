//! Trusted issuers: matching a token's `iss` against the configured ones (exact, or the Entra
//! multi-tenant forms with `{tenantid}`), and the tenant rules. A multi-tenant issuer accepts
//! only its `allowed_tenants`, or every tenant when `allow_any_tenant` says so explicitly: any
//! Entra tenant's admins can give their users whatever `roles` they like.

use crate::config::IssuerConfig;
use crate::error::GatewayError;

const TENANT: &str = "{tenantid}";

/// A configured issuer, ready to match tokens.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub config: IssuerConfig,
    /// Where its keys are found (its OIDC discovery document).
    pub discovery_url: String,
}

impl TrustedIssuer {
    pub fn new(config: IssuerConfig) -> Self {
        let discovery_url = config.discovery_url.clone().unwrap_or_else(|| default_discovery(&config.issuer));
        Self { config, discovery_url }
    }

    /// Whether `iss` is this issuer's; for `{tenantid}` forms, the tenant it names.
    pub fn matches(&self, iss: &str) -> Option<Option<String>> {
        let pattern = &self.config.issuer;
        match pattern.split_once(TENANT) {
            None => (pattern == iss).then_some(None),
            Some((prefix, suffix)) => {
                let tenant = iss.strip_prefix(prefix)?.strip_suffix(suffix)?;
                let valid = !tenant.is_empty() && tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                valid.then(|| Some(tenant.to_string()))
            }
        }
    }

    /// Whether `{tenantid}` stands for any tenant in the issuer.
    pub fn is_multi_tenant(&self) -> bool {
        self.config.issuer.contains(TENANT)
    }

    /// Checks the tenant rules: the `tid` claim equals the tenant in `iss` (multi-tenant forms),
    /// and is one of `allowed_tenants` when that list is set. A multi-tenant issuer with neither
    /// `allowed_tenants` nor `allow_any_tenant` accepts nothing (the configuration check refuses
    /// it before: this is the second lock).
    pub fn check_tenant(&self, iss_tenant: Option<&str>, tid: Option<&str>) -> Result<(), GatewayError> {
        if let Some(from_iss) = iss_tenant {
            if tid != Some(from_iss) {
                return Err(GatewayError::InvalidToken(format!(
                    "the `tid` claim does not match the tenant `{from_iss}` of the issuer"
                )));
            }
        }
        let allowed = &self.config.allowed_tenants;
        if self.is_multi_tenant() && allowed.is_empty() && !self.config.allow_any_tenant {
            return Err(GatewayError::InvalidToken(format!("tenant `{}` is not allowed", tid.unwrap_or_default())));
        }
        if !allowed.is_empty() && !tid.is_some_and(|t| allowed.iter().any(|a| a == t)) {
            return Err(GatewayError::InvalidToken(format!("tenant `{}` is not allowed", tid.unwrap_or_default())));
        }
        Ok(())
    }
}

/// Refuses issuer settings that would trust more than meant: a multi-tenant form without
/// `allowed_tenants` or `allow_any_tenant`, and Entra's `common`/`organizations` authorities,
/// which never appear in a token's `iss` (the multi-tenant form is `{tenantid}`).
pub fn check_config(config: &IssuerConfig) -> Result<(), String> {
    let issuer = &config.issuer;
    for alias in ["common", "organizations"] {
        if issuer.contains(&format!("login.microsoftonline.com/{alias}/")) {
            return Err(format!(
                "issuer `{issuer}`: Entra tokens never carry `{alias}` in `iss`; for several tenants write \
                 `https://login.microsoftonline.com/{{tenantid}}/v2.0` (or `https://sts.windows.net/{{tenantid}}/`) \
                 with `allowed_tenants`"
            ));
        }
    }
    if issuer.contains(TENANT) && config.allowed_tenants.is_empty() && !config.allow_any_tenant {
        return Err(format!(
            "issuer `{issuer}` accepts tokens of every Entra tenant, whose admins set their own `roles`: \
             list the accepted tenants in `allowed_tenants`, or set `allow_any_tenant = true` to accept any"
        ));
    }
    Ok(())
}

/// `<issuer>/.well-known/openid-configuration`; Entra's multi-tenant forms use the `common`
/// metadata, whose keys sign the tokens of every tenant.
fn default_discovery(issuer: &str) -> String {
    if issuer.starts_with("https://sts.windows.net/") {
        return "https://login.microsoftonline.com/common/.well-known/openid-configuration".into();
    }
    let base = issuer.replace(TENANT, "common");
    format!("{}/.well-known/openid-configuration", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(iss: &str, tenants: &[&str]) -> TrustedIssuer {
        TrustedIssuer::new(IssuerConfig {
            issuer: iss.into(),
            audiences: vec!["a".into()],
            allowed_tenants: tenants.iter().map(|t| (*t).to_string()).collect(),
            allow_any_tenant: tenants.is_empty(),
            discovery_url: None,
        })
    }

    #[test]
    fn a_multi_tenant_issuer_without_tenants_accepts_none_unless_any_is_explicit() {
        let mut config = IssuerConfig {
            issuer: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            audiences: vec!["a".into()],
            ..IssuerConfig::default()
        };
        assert!(check_config(&config).is_err_and(|m| m.contains("allowed_tenants")));
        let unlocked = TrustedIssuer::new(config.clone());
        assert!(unlocked.check_tenant(Some("t1"), Some("t1")).is_err(), "refused even past the config check");
        config.allow_any_tenant = true;
        assert!(check_config(&config).is_ok());
        assert!(TrustedIssuer::new(config.clone()).check_tenant(Some("t1"), Some("t1")).is_ok());
        config.allow_any_tenant = false;
        config.allowed_tenants = vec!["t1".into()];
        assert!(check_config(&config).is_ok());
        config.issuer = "https://login.microsoftonline.com/organizations/v2.0".into();
        assert!(check_config(&config).is_err_and(|m| m.contains("{tenantid}")));
    }

    #[test]
    fn entra_v1_and_v2_forms() {
        let v2 = issuer("https://login.microsoftonline.com/{tenantid}/v2.0", &["t1"]);
        assert_eq!(v2.matches("https://login.microsoftonline.com/t1/v2.0"), Some(Some("t1".into())));
        assert_eq!(v2.matches("https://login.microsoftonline.com/t1/v2.0/x"), None);
        assert_eq!(v2.discovery_url, "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration");
        assert!(v2.check_tenant(Some("t1"), Some("t1")).is_ok());
        assert!(v2.check_tenant(Some("t2"), Some("t2")).is_err(), "not an allowed tenant");
        assert!(v2.check_tenant(Some("t1"), Some("t2")).is_err(), "tid differs from iss");
        let v1 = issuer("https://sts.windows.net/{tenantid}/", &[]);
        assert_eq!(v1.matches("https://sts.windows.net/t9/"), Some(Some("t9".into())));
        assert!(v1.discovery_url.starts_with("https://login.microsoftonline.com/common/"));
        let exact = issuer("http://127.0.0.1:9/realm", &[]);
        assert_eq!(exact.matches("http://127.0.0.1:9/realm"), Some(None));
        assert_eq!(exact.discovery_url, "http://127.0.0.1:9/realm/.well-known/openid-configuration");
    }
}
