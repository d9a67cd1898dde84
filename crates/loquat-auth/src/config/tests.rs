//! `providers_from_env`: every provider's variable names, LobeChat's aliases and older
//! spellings, and the errors that name the variable to fix.

use std::collections::HashMap;

use super::*;

fn read(vars: &[(&str, &str)]) -> Result<Vec<SsoProvider>, AuthConfigError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    providers_from_env(&|name| map.get(name).cloned())
}

fn one(vars: &[(&str, &str)]) -> SsoProvider {
    let mut providers = read(vars).expect("the settings are valid");
    assert_eq!(providers.len(), 1, "{providers:?}");
    providers.remove(0)
}

fn oidc_parts(provider: &SsoProvider) -> (&str, &str, &str) {
    match &provider.kind {
        SsoKind::Oidc { issuer, client_id, client_secret } => (issuer, client_id, client_secret.expose()),
        SsoKind::GitHub { .. } => panic!("expected OIDC, got {provider:?}"),
    }
}

#[test]
fn no_list_means_no_sso() {
    assert_eq!(read(&[]).expect("valid"), Vec::new());
    assert_eq!(read(&[("AUTH_SSO_PROVIDERS", "  ")]).expect("valid"), Vec::new());
    // Variables of a provider that is not listed are ignored.
    assert_eq!(read(&[("AUTH_KEYCLOAK_ID", "x")]).expect("valid"), Vec::new());
}

#[test]
fn every_oidc_provider_reads_its_auth_idp_variables() {
    let cases = [
        ("auth0", "AUTH0", "Auth0"),
        ("authelia", "AUTHELIA", "Authelia"),
        ("authentik", "AUTHENTIK", "Authentik"),
        ("casdoor", "CASDOOR", "Casdoor"),
        ("keycloak", "KEYCLOAK", "Keycloak"),
        ("logto", "LOGTO", "Logto"),
        ("okta", "OKTA", "Okta"),
        ("zitadel", "ZITADEL", "ZITADEL"),
        ("generic-oidc", "GENERIC_OIDC", "Generic OIDC"),
    ];
    for (id, upper, label) in cases {
        let id_var = format!("AUTH_{upper}_ID");
        let secret_var = format!("AUTH_{upper}_SECRET");
        let issuer_var = format!("AUTH_{upper}_ISSUER");
        let provider = one(&[
            ("AUTH_SSO_PROVIDERS", id),
            (&id_var, "client-1"),
            (&secret_var, "secret-1"),
            (&issuer_var, "https://idp.example.com/realms/main"),
        ]);
        assert_eq!(provider.id, id);
        assert_eq!(provider.name, label);
        assert_eq!(oidc_parts(&provider), ("https://idp.example.com/realms/main", "client-1", "secret-1"));

        // Each of the three is required, and the error names it.
        for missing in [&id_var, &secret_var, &issuer_var] {
            let vars: Vec<(&str, &str)> = [(&id_var, "c"), (&secret_var, "s"), (&issuer_var, "https://i.example")]
                .into_iter()
                .filter(|(name, _)| *name != missing)
                .map(|(name, value)| (name.as_str(), value))
                .chain([("AUTH_SSO_PROVIDERS", id)])
                .collect();
            let error = read(&vars).expect_err("a variable is missing");
            assert!(
                matches!(&error, AuthConfigError::MissingVariable { variable, provider, .. }
                    if variable == missing && provider == id),
                "{error:?}"
            );
            assert!(error.to_string().contains(missing.as_str()), "{error}");
        }
    }
}

#[test]
fn lobechat_1x_list_variable_and_older_names_work() {
    let provider = one(&[
        ("NEXT_AUTH_SSO_PROVIDERS", "auth0"),
        ("AUTH0_CLIENT_ID", "old-id"),
        ("AUTH0_CLIENT_SECRET", "old-secret"),
        ("AUTH0_ISSUER", "https://tenant.auth0.com/"),
    ]);
    assert_eq!(oidc_parts(&provider), ("https://tenant.auth0.com/", "old-id", "old-secret"));

    for (id, prefix) in [("authentik", "AUTHENTIK"), ("zitadel", "ZITADEL"), ("logto", "LOGTO")] {
        let (i, s, iss) =
            (format!("{prefix}_CLIENT_ID"), format!("{prefix}_CLIENT_SECRET"), format!("{prefix}_ISSUER"));
        let provider = one(&[("AUTH_SSO_PROVIDERS", id), (&i, "a"), (&s, "b"), (&iss, "https://c.example")]);
        assert_eq!(oidc_parts(&provider), ("https://c.example", "a", "b"), "{id}");
    }

    // The new name wins over the old one; AUTH_SSO_PROVIDERS over NEXT_AUTH_SSO_PROVIDERS.
    let provider = one(&[
        ("AUTH_SSO_PROVIDERS", "auth0"),
        ("NEXT_AUTH_SSO_PROVIDERS", "github"),
        ("AUTH_AUTH0_ID", "new-id"),
        ("AUTH0_CLIENT_ID", "old-id"),
        ("AUTH_AUTH0_SECRET", "s"),
        ("AUTH_AUTH0_ISSUER", "https://tenant.auth0.com"),
    ]);
    assert_eq!(oidc_parts(&provider).1, "new-id");

    let error = read(&[("AUTH_SSO_PROVIDERS", "auth0"), ("AUTH0_CLIENT_ID", "x"), ("AUTH0_ISSUER", "https://a.b")])
        .expect_err("no secret");
    assert_eq!(
        error.to_string(),
        "the SSO provider `auth0` is enabled but AUTH_AUTH0_SECRET is not set (also accepted: AUTH0_CLIENT_SECRET)"
    );
}

#[test]
fn github_reads_both_spellings() {
    for (id_var, secret_var) in [("AUTH_GITHUB_ID", "AUTH_GITHUB_SECRET"), ("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")]
    {
        let provider = one(&[("AUTH_SSO_PROVIDERS", "github"), (id_var, "Iv1.abc"), (secret_var, "gh-secret")]);
        assert_eq!((provider.id.as_str(), provider.name.as_str()), ("github", "GitHub"));
        match provider.kind {
            SsoKind::GitHub { client_id, client_secret } => {
                assert_eq!((client_id.as_str(), client_secret.expose()), ("Iv1.abc", "gh-secret"));
            }
            SsoKind::Oidc { .. } => panic!("GitHub is not OIDC"),
        }
    }
    let error = read(&[("AUTH_SSO_PROVIDERS", "github"), ("AUTH_GITHUB_SECRET", "s")]).expect_err("no id");
    assert!(error.to_string().contains("AUTH_GITHUB_ID is not set (also accepted: GITHUB_CLIENT_ID)"), "{error}");
}

#[test]
fn google_is_oidc_with_a_fixed_issuer() {
    let provider = one(&[("AUTH_SSO_PROVIDERS", "google"), ("AUTH_GOOGLE_ID", "g-id"), ("AUTH_GOOGLE_SECRET", "g-s")]);
    assert_eq!(oidc_parts(&provider), ("https://accounts.google.com", "g-id", "g-s"));
    assert_eq!(provider.name, "Google");
}

#[test]
fn microsoft_and_its_aliases_build_the_tenant_issuer() {
    let provider = one(&[
        ("AUTH_SSO_PROVIDERS", "microsoft"),
        ("AUTH_MICROSOFT_ID", "ms-id"),
        ("AUTH_MICROSOFT_SECRET", "ms-secret"),
        ("AUTH_MICROSOFT_TENANT_ID", "0b2c-tenant"),
    ]);
    assert_eq!(oidc_parts(&provider), ("https://login.microsoftonline.com/0b2c-tenant/v2.0", "ms-id", "ms-secret"));

    // Without a tenant: the multi-tenant `common` endpoint.
    let provider =
        one(&[("AUTH_SSO_PROVIDERS", "microsoft"), ("AUTH_MICROSOFT_ID", "a"), ("AUTH_MICROSOFT_SECRET", "b")]);
    assert_eq!(oidc_parts(&provider).0, "https://login.microsoftonline.com/common/v2.0");

    // LobeChat 1.x: `microsoft-entra-id` with its own names and a sovereign-cloud base URL; the
    // listed id is kept so the registered callback URL still matches.
    let provider = one(&[
        ("NEXT_AUTH_SSO_PROVIDERS", "microsoft-entra-id"),
        ("AUTH_MICROSOFT_ENTRA_ID_ID", "e-id"),
        ("AUTH_MICROSOFT_ENTRA_ID_SECRET", "e-secret"),
        ("AUTH_MICROSOFT_ENTRA_ID_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AUTH_MICROSOFT_ENTRA_ID_BASE_URL", "https://login.microsoftonline.us/"),
    ]);
    assert_eq!(provider.id, "microsoft-entra-id");
    assert_eq!(provider.name, "Microsoft");
    assert_eq!(
        oidc_parts(&provider),
        ("https://login.microsoftonline.us/contoso.onmicrosoft.com/v2.0", "e-id", "e-secret")
    );

    // Older 1.x: `azure-ad`.
    let provider = one(&[
        ("NEXT_AUTH_SSO_PROVIDERS", "azure-ad"),
        ("AZURE_AD_CLIENT_ID", "z-id"),
        ("AZURE_AD_CLIENT_SECRET", "z-secret"),
        ("AZURE_AD_TENANT_ID", "t1"),
    ]);
    assert_eq!(provider.id, "azure-ad");
    assert_eq!(oidc_parts(&provider), ("https://login.microsoftonline.com/t1/v2.0", "z-id", "z-secret"));
    let provider = one(&[
        ("AUTH_SSO_PROVIDERS", "azure-ad"),
        ("AUTH_AZURE_AD_ID", "y-id"),
        ("AUTH_AZURE_AD_SECRET", "y-secret"),
        ("AUTH_AZURE_AD_TENANT_ID", "t2"),
    ]);
    assert_eq!(oidc_parts(&provider), ("https://login.microsoftonline.com/t2/v2.0", "y-id", "y-secret"));

    // An explicit issuer wins over tenant and authority.
    let provider = one(&[
        ("AUTH_SSO_PROVIDERS", "microsoft-entra-id"),
        ("AUTH_MICROSOFT_ENTRA_ID_ID", "a"),
        ("AUTH_MICROSOFT_ENTRA_ID_SECRET", "b"),
        ("AUTH_MICROSOFT_ENTRA_ID_TENANT_ID", "ignored"),
        ("MICROSOFT_ENTRA_ID_ISSUER", "https://login.microsoftonline.com/explicit/v2.0"),
    ]);
    assert_eq!(oidc_parts(&provider).0, "https://login.microsoftonline.com/explicit/v2.0");

    let error = read(&[("AUTH_SSO_PROVIDERS", "microsoft"), ("AUTH_MICROSOFT_ID", "a")]).expect_err("no secret");
    assert!(
        error.to_string().contains("AUTH_MICROSOFT_SECRET is not set (also accepted: AUTH_MICROSOFT_ENTRA_ID_SECRET")
    );
}

#[test]
fn several_providers_keep_their_order_and_ids_are_case_insensitive() {
    let providers = read(&[
        ("AUTH_SSO_PROVIDERS", " GitHub ，keycloak,, auth0 "),
        ("AUTH_GITHUB_ID", "g"),
        ("AUTH_GITHUB_SECRET", "g"),
        ("AUTH_KEYCLOAK_ID", "k"),
        ("AUTH_KEYCLOAK_SECRET", "k"),
        ("AUTH_KEYCLOAK_ISSUER", "http://localhost:8080/realms/lobe"),
        ("AUTH_AUTH0_ID", "a"),
        ("AUTH_AUTH0_SECRET", "a"),
        ("AUTH_AUTH0_ISSUER", "https://a.auth0.com"),
    ])
    .expect("valid");
    let ids: Vec<&str> = providers.iter().map(|provider| provider.id.as_str()).collect();
    assert_eq!(ids, ["github", "keycloak", "auth0"]);
}

#[test]
fn unknown_duplicate_and_malformed_settings_are_errors() {
    let error = read(&[("AUTH_SSO_PROVIDERS", "auth0,clerk")]).expect_err("unknown");
    assert!(matches!(&error, AuthConfigError::UnknownProvider { id, variable: "AUTH_SSO_PROVIDERS" } if id == "clerk"));
    assert!(error.to_string().contains("`clerk`"), "{error}");

    let github = [("AUTH_GITHUB_ID", "g"), ("AUTH_GITHUB_SECRET", "g")];
    let error = read(&[&[("NEXT_AUTH_SSO_PROVIDERS", "github,github")][..], &github].concat()).expect_err("twice");
    assert!(matches!(error, AuthConfigError::DuplicateProvider { variable: "NEXT_AUTH_SSO_PROVIDERS", .. }));
    let ms = [("AUTH_MICROSOFT_ID", "a"), ("AUTH_MICROSOFT_SECRET", "b")];
    let error = read(&[&[("AUTH_SSO_PROVIDERS", "microsoft,azure-ad")][..], &ms].concat()).expect_err("alias twice");
    assert!(matches!(error, AuthConfigError::DuplicateProvider { .. }));

    for issuer in ["keycloak.example.com/realms/x", "ftp://idp.example.com", "https://idp.example.com/?realm=x"] {
        let error = read(&[
            ("AUTH_SSO_PROVIDERS", "keycloak"),
            ("AUTH_KEYCLOAK_ID", "k"),
            ("AUTH_KEYCLOAK_SECRET", "k"),
            ("AUTH_KEYCLOAK_ISSUER", issuer),
        ])
        .expect_err("bad issuer");
        assert!(matches!(&error, AuthConfigError::InvalidUrl { variable, .. } if variable == "AUTH_KEYCLOAK_ISSUER"));
    }
}

#[test]
fn empty_values_count_as_unset_and_secrets_never_print() {
    let error = read(&[
        ("AUTH_SSO_PROVIDERS", "okta"),
        ("AUTH_OKTA_ID", "o"),
        ("AUTH_OKTA_SECRET", ""),
        ("AUTH_OKTA_ISSUER", "https://dev-1.okta.com"),
    ])
    .expect_err("empty secret");
    assert!(matches!(error, AuthConfigError::MissingVariable { variable: "AUTH_OKTA_SECRET", .. }));

    let provider = one(&[
        ("AUTH_SSO_PROVIDERS", "okta"),
        ("AUTH_OKTA_ID", "o"),
        ("AUTH_OKTA_SECRET", "super-secret-value"),
        ("AUTH_OKTA_ISSUER", "https://dev-1.okta.com"),
    ]);
    assert!(!format!("{provider:?}").contains("super-secret-value"));
}

#[test]
fn admin_groups_and_their_claim_are_read_per_provider() {
    let provider = one(&[
        ("AUTH_SSO_PROVIDERS", "keycloak"),
        ("AUTH_KEYCLOAK_ID", "a"),
        ("AUTH_KEYCLOAK_SECRET", "b"),
        ("AUTH_KEYCLOAK_ISSUER", "https://id.example.com/realms/x"),
        ("AUTH_KEYCLOAK_ADMIN_GROUPS", " loquat-admins , platform ,"),
        ("AUTH_KEYCLOAK_GROUPS_CLAIM", "realm_access.roles"),
    ]);
    assert_eq!(provider.admin_groups, ["loquat-admins", "platform"]);
    assert_eq!(provider.groups_claim, "realm_access.roles");
    let plain = one(&[
        ("AUTH_SSO_PROVIDERS", "keycloak"),
        ("AUTH_KEYCLOAK_ID", "a"),
        ("AUTH_KEYCLOAK_SECRET", "b"),
        ("AUTH_KEYCLOAK_ISSUER", "https://id.example.com/realms/x"),
    ]);
    assert!(plain.admin_groups.is_empty());
    assert_eq!(plain.groups_claim, "groups");
    assert!(crate::known_env_vars().iter().any(|name| name == "AUTH_KEYCLOAK_ADMIN_GROUPS"));
    let claims = serde_json::json!({ "groups": "one", "realm_access": { "roles": ["a", "b", 3] } });
    let claims = claims.as_object().expect("object");
    assert_eq!(crate::claimed_groups(claims, "groups"), ["one"]);
    assert_eq!(crate::claimed_groups(claims, "realm_access.roles"), ["a", "b"]);
    assert!(crate::claimed_groups(claims, "missing.path").is_empty());
}
