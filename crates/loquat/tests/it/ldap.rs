//! Directory sign-in against a real OpenLDAP (`slapd`): people sign in with their uid or email
//! and directory password and get an account; the admin group decides the role at every
//! sign-in; a wrong password, a disabled person and injected filter syntax are refused alike;
//! a directory that is down is said so while local accounts and SSO keep working; LDAPS and StartTLS
//! verify the directory's certificate.

use loquat::Config;
use loquat_auth::ldap::{Ldap, LdapError, LdapSettings};
use loquat_core::Secret;
use loquat_core::domain::Role;
use loquat_test_support::fake_idp::{FakeIdp, FakeUser};
use loquat_test_support::slapd::{GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, TestDirectory};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, TestOptions, action_filter, cookie_client};

const ACTIVE_PEOPLE: &str = "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login}))(!(employeeType=disabled)))";

fn settings(directory: &TestDirectory) -> LdapSettings {
    LdapSettings {
        url: directory.url.clone(),
        bind_dn: Some(SERVICE_DN.into()),
        bind_password: Some(Secret::new(SERVICE_PASSWORD)),
        user_base: PEOPLE.into(),
        user_filter: ACTIVE_PEOPLE.into(),
        group_base: Some(GROUPS.into()),
        admin_groups: vec!["Loquat-Admins".into()],
        ..LdapSettings::default()
    }
}

async fn sign_in(app: &TestApp, login: &str, password: &str) -> (u16, String) {
    let client = cookie_client();
    let response =
        client.post(app.url("/login")).form(&[("email", login), ("password", password)]).send().await.expect("login");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn role_of(app: &TestApp, email: &str) -> Option<Role> {
    let user = app.services.store().find_user_by_email(email).await.expect("reads");
    user.map(|user| user.role)
}

#[tokio::test]
async fn directory_people_sign_in_and_their_groups_decide_their_role() {
    let Some(mut directory) = TestDirectory::start().await else {
        eprintln!("skipped: slapd is not installed");
        return;
    };
    let alice = directory.add_person("alice", "Alice Liddell", "alice@example.org", "alice-pw", false).await;
    let bob = directory.add_person("bob", "Bob Builder", "bob@example.org", "bob-pw", false).await;
    directory.add_person("carol", "Carol Danvers", "carol@example.org", "carol-pw", true).await;
    let admins = directory.add_group("loquat-admins", &[&alice]).await;
    let url = directory.url.clone();
    // Single sign-on too: the administrator's identity provider account.
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "ada-1".into(),
        email: Some(ADMIN_EMAIL.into()),
        email_verified: true,
        name: Some("Ada".into()),
    });
    let app = TestApp::spawn_with(TestOptions {
        env: crate::people::oidc_env(&idp, &[]),
        adjust: Some(Box::new(move |config: &mut Config| {
            config.ldap.url = url;
            config.ldap.bind_dn = SERVICE_DN.into();
            config.ldap.bind_password = Some(Secret::new(SERVICE_PASSWORD));
            config.ldap.user_base = PEOPLE.into();
            config.ldap.user_filter = ACTIVE_PEOPLE.into();
            config.ldap.group_base = GROUPS.into();
            config.ldap.admin_groups = "loquat-admins".into();
        })),
        ..TestOptions::default()
    })
    .await;
    let (_, page) = app.page_as(&cookie_client(), "/login").await;
    assert!(page.contains("Username or email") && page.contains("directory account"), "the form says so");

    // Bob, by uid: an account (invite-only instance: the directory is the invitation), a member.
    assert_eq!(sign_in(&app, "bob", "bob-pw").await.0, 303);
    assert_eq!(role_of(&app, "bob@example.org").await, Some(Role::User));
    // By email too, the same account.
    assert_eq!(sign_in(&app, "bob@example.org", "bob-pw").await.0, 303);
    let people = app.services.store().list_users("example.org", 100, 0).await.expect("lists");
    assert_eq!(people.iter().filter(|p| p.email.as_deref() == Some("bob@example.org")).count(), 1);
    // Alice is in the admin group: an administrator.
    assert_eq!(sign_in(&app, "alice", "alice-pw").await.0, 303);
    assert_eq!(role_of(&app, "alice@example.org").await, Some(Role::Admin));

    // A wrong password, a disabled person, nobody, an empty password, filter syntax: refused alike.
    for (login, password) in [
        ("bob", "wrong"),
        ("carol", "carol-pw"),
        ("nobody", "x"),
        ("bob", ""),
        ("*", "bob-pw"),
        ("bob)(uid=*", "bob-pw"),
        ("*)(|(uid=*", "x"),
    ] {
        let (status, page) = sign_in(&app, login, password).await;
        assert_eq!(status, 401, "{login:?}");
        assert!(page.contains("is not right"), "{login:?}: {page}");
    }
    assert_eq!(role_of(&app, "carol@example.org").await, None, "no account for a disabled person");
    let admin = app.admin().await;
    let failed = app.services.admin.admin_audit(admin, &action_filter("login_failed"), 0).await.expect("audit");
    assert!(failed.iter().any(|event| event.detail == "bad credentials (directory)"));

    // A named role of a group's name is given at sign-in, and taken back with the group.
    app.services.admin.admin_add_named_role(admin, "research", &Default::default()).await.expect("defined");
    let research = directory.add_group("Research", &[&bob]).await;
    assert_eq!(sign_in(&app, "bob", "bob-pw").await.0, 303);
    let store = app.services.store();
    let named = async || store.find_user_by_email("bob@example.org").await.expect("reads").expect("Bob").named_role;
    assert_eq!(named().await.as_deref(), Some("research"));
    directory.set_members(&research, &[&alice]).await;
    assert_eq!(sign_in(&app, "bob", "bob-pw").await.0, 303);
    assert_eq!(named().await, None);

    // Moved out of the admin group: a member at the next sign-in, and the change is audited.
    directory.set_members(&admins, &[&bob]).await;
    assert_eq!(sign_in(&app, "alice", "alice-pw").await.0, 303);
    assert_eq!(role_of(&app, "alice@example.org").await, Some(Role::User));
    assert_eq!(role_of(&app, "bob@example.org").await, Some(Role::User), "until Bob signs in again");
    assert_eq!(sign_in(&app, "bob", "bob-pw").await.0, 303);
    assert_eq!(role_of(&app, "bob@example.org").await, Some(Role::Admin));
    let changes = app.services.admin.admin_audit(admin, &action_filter("role_changed"), 0).await.expect("audit");
    assert!(changes.iter().any(|event| event.detail == "user from ldap groups"), "{changes:?}");
    // Disabled in the directory later: no more sign-ins.
    directory.set_employee_type(&bob, "disabled").await;
    assert_eq!(sign_in(&app, "bob", "bob-pw").await.0, 401);

    // A directory entry carrying the local administrator's address does not get that account.
    directory.add_person("mallory", "Mallory", ADMIN_EMAIL, "mallory-pw", false).await;
    let (status, page) = sign_in(&app, "mallory", "mallory-pw").await;
    assert_eq!(status, 401);
    assert!(page.contains("already signs in with a password"), "{page}");
    let refused = app.services.admin.admin_audit(admin, &action_filter("login_failed"), 0).await.expect("audit");
    assert!(refused.iter().any(|event| event.detail == "directory email of a password account"));
    // The local administrator signs in with a password as before.
    assert_eq!(sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 303);
    // The directory goes down: its people are told, local accounts still work.
    directory.stop();
    let (status, page) = sign_in(&app, "alice", "alice-pw").await;
    assert_eq!(status, 401);
    assert!(page.contains("cannot be reached"), "{page}");
    assert_eq!(sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 303);
    let browser = cookie_client();
    let callback = crate::people::sso_round_trip(&app, &browser).await;
    assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 303, "SSO still works");
    let down = app.services.admin.admin_audit(admin, &action_filter("login_failed"), 0).await.expect("audit");
    assert!(down.iter().any(|event| event.detail == "directory unavailable"));
    app.cleanup().await;
}

#[tokio::test]
async fn ldaps_and_starttls_check_the_directory_certificate() {
    let Some(directory) = TestDirectory::start_with_tls().await else {
        eprintln!("skipped: slapd is not installed");
        return;
    };
    directory.add_person("dana", "Dana Scully", "dana@example.org", "dana-pw", false).await;
    let ca_file = directory.ca_file.clone();
    let ldaps = directory.ldaps_url.clone().expect("LDAPS");
    let password = Secret::new("dana-pw");

    let over_ldaps = Ldap::new(LdapSettings { url: ldaps.clone(), ca_file: ca_file.clone(), ..settings(&directory) })
        .expect("settings");
    let dana = over_ldaps.authenticate("dana", &password).await.expect("signs in over LDAPS");
    assert_eq!((dana.email.as_deref(), dana.name.as_deref()), (Some("dana@example.org"), Some("Dana Scully")));
    assert_eq!(dana.admin, Some(false));
    assert!(!dana.subject.contains('='), "the entry's UUID, not its DN: {}", dana.subject);

    let starttls =
        Ldap::new(LdapSettings { starttls: true, ca_file: ca_file.clone(), ..settings(&directory) }).expect("settings");
    starttls.authenticate("dana", &password).await.expect("signs in over StartTLS");

    // A certificate from a CA nobody trusts here is refused, password unsent.
    let untrusted = Ldap::new(LdapSettings { url: ldaps, ..settings(&directory) }).expect("settings");
    assert!(matches!(untrusted.authenticate("dana", &password).await, Err(LdapError::Unavailable(_))));
    let untrusted = Ldap::new(LdapSettings { starttls: true, ..settings(&directory) }).expect("settings");
    assert!(matches!(untrusted.authenticate("dana", &password).await, Err(LdapError::Unavailable(_))));
}

#[tokio::test]
async fn doctor_checks_the_directory_and_the_backup_destination() {
    let Some(directory) = TestDirectory::start().await else {
        eprintln!("skipped: slapd is not installed");
        return;
    };
    let data_dir = crate::helpers::temp_dir("doctor-ldap");
    let backups = data_dir.join("backups");
    let env = |password: &str| {
        vec![
            ("LOQUAT_LDAP__URL", directory.url.clone()),
            ("LOQUAT_LDAP__BIND_DN", SERVICE_DN.to_owned()),
            ("LOQUAT_LDAP__BIND_PASSWORD", password.to_owned()),
            ("LOQUAT_LDAP__USER_BASE", PEOPLE.to_owned()),
            ("LOQUAT_BACKUP__EVERY", "24h".to_owned()),
            ("LOQUAT_BACKUP__TO", backups.display().to_string()),
        ]
    };
    let good = crate::cli::loquat(&data_dir, &["doctor"], "", &env(SERVICE_PASSWORD)).await;
    let line = |out: &str, needle: &str| out.lines().find(|line| line.contains(needle)).unwrap_or_default().to_owned();
    assert!(line(&good.stdout, "directory ldap://").starts_with("[ok]"), "{}", good.stdout);
    assert!(line(&good.stdout, "scheduled backups every").starts_with("[ok]"), "{}", good.stdout);
    let wrong = crate::cli::loquat(&data_dir, &["doctor"], "", &env("not-the-password")).await;
    assert_eq!(wrong.code, 1);
    assert!(line(&wrong.stdout, "directory ldap://").starts_with("[FAIL]"), "{}", wrong.stdout);
    assert!(!wrong.stdout.contains("not-the-password") && !wrong.stderr.contains("not-the-password"));
    let without = crate::cli::loquat(&data_dir, &["doctor"], "", &[]).await;
    assert!(without.stdout.contains("[warn] scheduled backups: off"), "{}", without.stdout);
    assert!(without.stdout.contains("directory sign-in (LDAP): not configured"), "{}", without.stdout);
}
