//! Which SSO providers are enabled, read from LobeChat's environment variables (1.x NextAuth and
//! 2.x Better Auth spellings), so a team moving from LobeChat keeps its environment file.
//!
//! # Variables
//!
//! - `AUTH_SSO_PROVIDERS` (2.x), else `NEXT_AUTH_SSO_PROVIDERS` (1.x): the enabled providers,
//!   separated by `,` (or the full-width `，`), in the order of the login buttons. Unset or empty:
//!   no SSO. Ids are case-insensitive: `auth0`, `authelia`, `authentik`, `casdoor`, `keycloak`,
//!   `logto`, `okta`, `zitadel`, `generic-oidc`, `google`, `github`, and `microsoft` — also
//!   spelled `microsoft-entra-id` (LobeChat 1.x) or `azure-ad` (older 1.x). The id as listed is
//!   kept in URLs, so `/api/auth/callback/<id>` stays what the IdP was registered with.
//! - For each OIDC provider `<IDP>` (the id upper-cased, `-` → `_`): `AUTH_<IDP>_ID` (client id),
//!   `AUTH_<IDP>_SECRET` (client secret), `AUTH_<IDP>_ISSUER` (issuer URL, where
//!   `<issuer>/.well-known/openid-configuration` is served), all required. LobeChat's older
//!   names are accepted too: `AUTH0_CLIENT_ID` / `AUTH0_CLIENT_SECRET` / `AUTH0_ISSUER`,
//!   `AUTHENTIK_CLIENT_ID` / `AUTHENTIK_CLIENT_SECRET` / `AUTHENTIK_ISSUER`, `ZITADEL_CLIENT_ID`
//!   / `ZITADEL_CLIENT_SECRET` / `ZITADEL_ISSUER`, `LOGTO_CLIENT_ID` / `LOGTO_CLIENT_SECRET` /
//!   `LOGTO_ISSUER`.
//! - `google`: `AUTH_GOOGLE_ID`, `AUTH_GOOGLE_SECRET`; the issuer is `https://accounts.google.com`.
//! - `github`: `AUTH_GITHUB_ID` (or `GITHUB_CLIENT_ID`), `AUTH_GITHUB_SECRET` (or
//!   `GITHUB_CLIENT_SECRET`); plain OAuth 2 against github.com, see [`crate::GitHubEndpoints`].
//! - `microsoft` (Entra ID): `AUTH_MICROSOFT_ID` and `AUTH_MICROSOFT_SECRET` (or 1.x's
//!   `AUTH_MICROSOFT_ENTRA_ID_ID` / `_SECRET`, `AUTH_AZURE_AD_ID` / `_SECRET`,
//!   `AZURE_AD_CLIENT_ID` / `AZURE_AD_CLIENT_SECRET`) required; the issuer is
//!   `<authority>/<tenant>/v2.0` with the tenant from `AUTH_MICROSOFT_TENANT_ID` (or
//!   `AUTH_MICROSOFT_ENTRA_ID_TENANT_ID`, `AUTH_AZURE_AD_TENANT_ID`, `AZURE_AD_TENANT_ID`;
//!   default `common`, i.e. any organisation or personal account) and the authority from
//!   `AUTH_MICROSOFT_AUTHORITY_URL` (or `AUTH_MICROSOFT_ENTRA_ID_BASE_URL`; default
//!   `https://login.microsoftonline.com`). An explicit issuer wins: `AUTH_MICROSOFT_ISSUER`,
//!   `AUTH_MICROSOFT_ENTRA_ID_ISSUER` or `MICROSOFT_ENTRA_ID_ISSUER`.
//!
//! Empty values count as unset (LobeChat's Docker image declares every variable as `""`).

#[cfg(test)]
mod tests;

use loquat_core::Secret;

/// One enabled SSO provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoProvider {
    /// As listed in `AUTH_SSO_PROVIDERS` (lower-cased): `auth0`, `keycloak`, `github`, …; used in
    /// URLs such as `/api/auth/callback/<id>`.
    pub id: String,
    /// The login button's label ("Keycloak", "GitHub", "Microsoft", …).
    pub name: String,
    pub kind: SsoKind,
    /// Directory groups whose members administer Loquat (`AUTH_<IDP>_ADMIN_GROUPS`); empty, the
    /// directory does not decide roles.
    pub admin_groups: Vec<String>,
    /// The ID token claim holding the groups (`AUTH_<IDP>_GROUPS_CLAIM`, default `groups`; a
    /// dotted path such as `realm_access.roles` reaches into objects).
    pub groups_claim: String,
}

/// How Loquat talks to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoKind {
    /// OpenID Connect: discovery, authorization code + PKCE, a verified ID token.
    Oidc { issuer: String, client_id: String, client_secret: Secret },
    /// GitHub's OAuth 2 (no ID token): the identity comes from its REST API.
    GitHub { client_id: String, client_secret: Secret },
}

/// A wrong SSO setting; the message names the variable to fix and never shows a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{variable} lists `{id}`, which is not a supported SSO provider (supported: {SUPPORTED_IDS})")]
    UnknownProvider { variable: &'static str, id: String },
    #[error("{variable} lists the SSO provider `{id}` more than once")]
    DuplicateProvider { variable: &'static str, id: String },
    #[error("the SSO provider `{provider}` is enabled but {variable} is not set{}", also_accepted_text(.also_accepted))]
    MissingVariable { provider: String, variable: &'static str, also_accepted: Vec<&'static str> },
    #[error("{variable} must be an http(s) URL: {reason}")]
    InvalidUrl { variable: String, reason: String },
    #[error("the HTTP client for SSO could not be built: {0}")]
    HttpClient(String),
}

fn also_accepted_text(names: &[&'static str]) -> String {
    if names.is_empty() { String::new() } else { format!(" (also accepted: {})", names.join(", ")) }
}

const SUPPORTED_IDS: &str = "auth0, authelia, authentik, casdoor, keycloak, logto, okta, zitadel, generic-oidc, \
                             google, github, microsoft (alias microsoft-entra-id, azure-ad)";

/// The two variables that list providers, in order of precedence.
const LIST_VARIABLES: [&str; 2] = ["AUTH_SSO_PROVIDERS", "NEXT_AUTH_SSO_PROVIDERS"];

const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
const MICROSOFT_DEFAULT_TENANT: &str = "common";

#[derive(Clone, Copy)]
enum Family {
    /// Client id, secret and issuer from the environment.
    Oidc {
        issuer: &'static [&'static str],
    },
    /// OIDC with a fixed issuer.
    FixedIssuer(&'static str),
    Microsoft,
    GitHub,
}

/// A supported provider: its canonical id, label and variables (first name preferred; the
/// others are LobeChat's older spellings).
struct Spec {
    id: &'static str,
    aliases: &'static [&'static str],
    name: &'static str,
    family: Family,
    client_id: &'static [&'static str],
    secret: &'static [&'static str],
}

const fn oidc(
    id: &'static str,
    name: &'static str,
    client_id: &'static [&'static str],
    secret: &'static [&'static str],
    issuer: &'static [&'static str],
) -> Spec {
    Spec { id, aliases: &[], name, family: Family::Oidc { issuer }, client_id, secret }
}

const SPECS: &[Spec] = &[
    oidc(
        "auth0",
        "Auth0",
        &["AUTH_AUTH0_ID", "AUTH0_CLIENT_ID"],
        &["AUTH_AUTH0_SECRET", "AUTH0_CLIENT_SECRET"],
        &["AUTH_AUTH0_ISSUER", "AUTH0_ISSUER"],
    ),
    oidc("authelia", "Authelia", &["AUTH_AUTHELIA_ID"], &["AUTH_AUTHELIA_SECRET"], &["AUTH_AUTHELIA_ISSUER"]),
    oidc(
        "authentik",
        "Authentik",
        &["AUTH_AUTHENTIK_ID", "AUTHENTIK_CLIENT_ID"],
        &["AUTH_AUTHENTIK_SECRET", "AUTHENTIK_CLIENT_SECRET"],
        &["AUTH_AUTHENTIK_ISSUER", "AUTHENTIK_ISSUER"],
    ),
    oidc("casdoor", "Casdoor", &["AUTH_CASDOOR_ID"], &["AUTH_CASDOOR_SECRET"], &["AUTH_CASDOOR_ISSUER"]),
    oidc("keycloak", "Keycloak", &["AUTH_KEYCLOAK_ID"], &["AUTH_KEYCLOAK_SECRET"], &["AUTH_KEYCLOAK_ISSUER"]),
    oidc(
        "logto",
        "Logto",
        &["AUTH_LOGTO_ID", "LOGTO_CLIENT_ID"],
        &["AUTH_LOGTO_SECRET", "LOGTO_CLIENT_SECRET"],
        &["AUTH_LOGTO_ISSUER", "LOGTO_ISSUER"],
    ),
    oidc("okta", "Okta", &["AUTH_OKTA_ID"], &["AUTH_OKTA_SECRET"], &["AUTH_OKTA_ISSUER"]),
    oidc(
        "zitadel",
        "ZITADEL",
        &["AUTH_ZITADEL_ID", "ZITADEL_CLIENT_ID"],
        &["AUTH_ZITADEL_SECRET", "ZITADEL_CLIENT_SECRET"],
        &["AUTH_ZITADEL_ISSUER", "ZITADEL_ISSUER"],
    ),
    oidc(
        "generic-oidc",
        "Generic OIDC",
        &["AUTH_GENERIC_OIDC_ID"],
        &["AUTH_GENERIC_OIDC_SECRET"],
        &["AUTH_GENERIC_OIDC_ISSUER"],
    ),
    Spec {
        id: "google",
        aliases: &[],
        name: "Google",
        family: Family::FixedIssuer(GOOGLE_ISSUER),
        client_id: &["AUTH_GOOGLE_ID"],
        secret: &["AUTH_GOOGLE_SECRET"],
    },
    Spec {
        id: "github",
        aliases: &[],
        name: "GitHub",
        family: Family::GitHub,
        client_id: &["AUTH_GITHUB_ID", "GITHUB_CLIENT_ID"],
        secret: &["AUTH_GITHUB_SECRET", "GITHUB_CLIENT_SECRET"],
    },
    Spec {
        id: "microsoft",
        aliases: &["microsoft-entra-id", "azure-ad"],
        name: "Microsoft",
        family: Family::Microsoft,
        client_id: &["AUTH_MICROSOFT_ID", "AUTH_MICROSOFT_ENTRA_ID_ID", "AUTH_AZURE_AD_ID", "AZURE_AD_CLIENT_ID"],
        secret: &[
            "AUTH_MICROSOFT_SECRET",
            "AUTH_MICROSOFT_ENTRA_ID_SECRET",
            "AUTH_AZURE_AD_SECRET",
            "AZURE_AD_CLIENT_SECRET",
        ],
    },
];

const MICROSOFT_ISSUER: &[&str] =
    &["AUTH_MICROSOFT_ISSUER", "AUTH_MICROSOFT_ENTRA_ID_ISSUER", "MICROSOFT_ENTRA_ID_ISSUER"];
const MICROSOFT_TENANT: &[&str] =
    &["AUTH_MICROSOFT_TENANT_ID", "AUTH_MICROSOFT_ENTRA_ID_TENANT_ID", "AUTH_AZURE_AD_TENANT_ID", "AZURE_AD_TENANT_ID"];
const MICROSOFT_AUTHORITY_VARS: &[&str] = &["AUTH_MICROSOFT_AUTHORITY_URL", "AUTH_MICROSOFT_ENTRA_ID_BASE_URL"];

/// Reads the enabled SSO providers through `lookup` (e.g. `&|name| std::env::var(name).ok()`);
/// see the module documentation for the variables. An empty list means SSO is off.
pub fn providers_from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<SsoProvider>, AuthConfigError> {
    let get = |name: &str| lookup(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
    let Some((variable, list)) = LIST_VARIABLES.iter().find_map(|name| get(name).map(|list| (*name, list))) else {
        return Ok(Vec::new());
    };
    // Every id first, so an unknown or repeated one is reported before a missing variable.
    let mut listed: Vec<(&'static Spec, String)> = Vec::new();
    for id in list.split([',', '，']).map(str::trim).filter(|id| !id.is_empty()) {
        let id = id.to_ascii_lowercase();
        let spec = SPECS
            .iter()
            .find(|spec| spec.id == id || spec.aliases.contains(&id.as_str()))
            .ok_or_else(|| AuthConfigError::UnknownProvider { variable, id: id.clone() })?;
        if listed.iter().any(|(seen, _)| seen.id == spec.id) {
            return Err(AuthConfigError::DuplicateProvider { variable, id });
        }
        listed.push((spec, id));
    }
    listed.into_iter().map(|(spec, id)| build(spec, id, &get)).collect()
}

/// Every variable [`providers_from_env`] may read, for documentation checks.
pub fn known_env_vars() -> Vec<String> {
    let mut names: Vec<&'static str> = LIST_VARIABLES.to_vec();
    for spec in SPECS {
        names.extend(spec.client_id.iter().chain(spec.secret));
        if let Family::Oidc { issuer } = spec.family {
            names.extend(issuer);
        }
    }
    names.extend(MICROSOFT_ISSUER.iter().chain(MICROSOFT_TENANT).chain(MICROSOFT_AUTHORITY_VARS));
    let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    for spec in SPECS {
        let (groups, claim) = group_variables(spec);
        names.extend([groups, claim]);
    }
    names
}

fn build(spec: &Spec, id: String, get: &dyn Fn(&str) -> Option<String>) -> Result<SsoProvider, AuthConfigError> {
    let required = |names: &'static [&'static str]| {
        first_set(names, get).ok_or_else(|| AuthConfigError::MissingVariable {
            provider: id.clone(),
            variable: names[0],
            also_accepted: names[1..].to_vec(),
        })
    };
    let client_id = required(spec.client_id)?.1;
    let client_secret = Secret::new(required(spec.secret)?.1);
    let kind = match spec.family {
        Family::GitHub => SsoKind::GitHub { client_id, client_secret },
        Family::Oidc { issuer } => {
            let (variable, issuer) = required(issuer)?;
            SsoKind::Oidc { issuer: checked_url(variable, issuer)?, client_id, client_secret }
        }
        Family::FixedIssuer(issuer) => SsoKind::Oidc { issuer: issuer.to_owned(), client_id, client_secret },
        Family::Microsoft => SsoKind::Oidc { issuer: microsoft_issuer(get)?, client_id, client_secret },
    };
    let (groups_variable, claim_variable) = group_variables(spec);
    let admin_groups = get(&groups_variable)
        .map(|list| list.split(',').map(str::trim).filter(|group| !group.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let groups_claim = get(&claim_variable).unwrap_or_else(|| "groups".to_owned());
    Ok(SsoProvider { id, name: spec.name.to_owned(), kind, admin_groups, groups_claim })
}

/// `AUTH_<IDP>_ADMIN_GROUPS` and `AUTH_<IDP>_GROUPS_CLAIM`, named after the provider's
/// `AUTH_<IDP>_ID`.
fn group_variables(spec: &Spec) -> (String, String) {
    let stem = spec.client_id[0].strip_prefix("AUTH_").and_then(|rest| rest.strip_suffix("_ID")).unwrap_or(spec.id);
    let stem = stem.to_ascii_uppercase().replace('-', "_");
    (format!("AUTH_{stem}_ADMIN_GROUPS"), format!("AUTH_{stem}_GROUPS_CLAIM"))
}

/// `<authority>/<tenant>/v2.0`, unless an issuer is given outright.
fn microsoft_issuer(get: &dyn Fn(&str) -> Option<String>) -> Result<String, AuthConfigError> {
    if let Some((variable, issuer)) = first_set(MICROSOFT_ISSUER, get) {
        return checked_url(variable, issuer);
    }
    let authority = match first_set(MICROSOFT_AUTHORITY_VARS, get) {
        Some((variable, authority)) => checked_url(variable, authority)?,
        None => MICROSOFT_AUTHORITY.to_owned(),
    };
    let tenant =
        first_set(MICROSOFT_TENANT, get).map_or_else(|| MICROSOFT_DEFAULT_TENANT.to_owned(), |(_, tenant)| tenant);
    if tenant.contains(['/', '?', '#']) {
        return Err(AuthConfigError::InvalidUrl {
            variable: MICROSOFT_TENANT[0].to_owned(),
            reason: "a tenant id or name cannot contain `/`, `?` or `#`".to_owned(),
        });
    }
    Ok(format!("{}/{tenant}/v2.0", authority.trim_end_matches('/')))
}

fn first_set(names: &'static [&'static str], get: &dyn Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    names.iter().find_map(|name| get(name).map(|value| (*name, value)))
}

/// Checks that `value` is an absolute http(s) URL with a host; returns it unchanged.
pub(crate) fn checked_url(variable: &str, value: String) -> Result<String, AuthConfigError> {
    let invalid = |reason: String| AuthConfigError::InvalidUrl { variable: variable.to_owned(), reason };
    let url = reqwest::Url::parse(&value).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("the scheme is `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("there is no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it cannot have a query or a fragment".to_owned()));
    }
    Ok(value)
}
