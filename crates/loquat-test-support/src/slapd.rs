//! A real OpenLDAP directory for tests: Debian's `slapd`, started on free local ports with a
//! generated configuration and an empty database in a temporary folder, then filled through
//! LDAP as its root. Skipped when `slapd` is missing, unless `LOQUAT_TEST_REQUIRE_ALL=1`.
//!
//! The tree: `dc=example,dc=org` with `ou=people` (inetOrgPerson entries, cleartext test
//! passwords), `ou=groups` (groupOfNames) and a service account `cn=loquat-service`. With TLS,
//! a CA and a certificate for 127.0.0.1 are made with `openssl`, and slapd listens on LDAPS too.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Mod};

use crate::postgres::REQUIRE_ALL_VAR;

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "root-secret";
pub const SERVICE_DN: &str = "cn=loquat-service,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service-secret";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";

/// A running slapd; stopped (and its folder removed) on drop.
pub struct TestDirectory {
    /// `ldap://127.0.0.1:<port>`.
    pub url: String,
    /// `ldaps://127.0.0.1:<port>` when started with TLS.
    pub ldaps_url: Option<String>,
    /// The CA's certificate (PEM) when started with TLS.
    pub ca_file: Option<PathBuf>,
    dir: PathBuf,
    child: Option<Child>,
}

fn slapd() -> Option<PathBuf> {
    let found = ["/usr/sbin/slapd", "/usr/local/sbin/slapd"].into_iter().map(PathBuf::from).find(|path| path.exists());
    if found.is_none() && std::env::var(REQUIRE_ALL_VAR).is_ok_and(|value| value.trim() == "1") {
        panic!("{REQUIRE_ALL_VAR}=1 but slapd is not installed: LDAP tests cannot be skipped (apt-get install slapd)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir`.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_key, ca, key, request, certificate, extensions) = (
        dir.join("ca.key"),
        dir.join("ca.pem"),
        dir.join("server.key"),
        dir.join("server.csr"),
        dir.join("server.pem"),
        dir.join("server.ext"),
    );
    run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]).args([
        "-subj",
        "/CN=Loquat test CA",
        "-keyout",
        path(&ca_key),
        "-out",
        path(&ca),
    ]));
    run(Command::new("openssl").args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"]).args([
        "-keyout",
        path(&key),
        "-out",
        path(&request),
    ]));
    std::fs::write(&extensions, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").expect("writes");
    run(Command::new("openssl").args(["x509", "-req", "-days", "2", "-CAcreateserial"]).args([
        "-in",
        path(&request),
        "-CA",
        path(&ca),
        "-CAkey",
        path(&ca_key),
        "-extfile",
        path(&extensions),
        "-out",
        path(&certificate),
    ]));
    (ca, certificate, key)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

impl TestDirectory {
    /// Starts an empty directory (plain LDAP), or `None` when slapd is missing.
    pub async fn start() -> Option<Self> {
        Self::start_with(false).await
    }

    /// Starts one that also speaks LDAPS and StartTLS with a certificate of a test CA.
    pub async fn start_with_tls() -> Option<Self> {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> Option<Self> {
        let slapd = slapd()?;
        let dir = std::env::temp_dir().join(format!("loquat-slapd-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("db")).expect("creates the folder");
        let mut config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             pidfile {dir}/slapd.pid\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n",
            dir = dir.display()
        );
        let (mut ldaps_url, mut ca_file) = (None, None);
        let port = free_port();
        let mut listen = format!("ldap://127.0.0.1:{port}/");
        if tls {
            let (ca, certificate, key) = make_certificates(&dir);
            config.push_str(&format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                ca.display(),
                certificate.display(),
                key.display()
            ));
            let secure = free_port();
            listen.push_str(&format!(" ldaps://127.0.0.1:{secure}/"));
            ldaps_url = Some(format!("ldaps://127.0.0.1:{secure}"));
            ca_file = Some(ca);
        }
        config.push_str(&format!(
            "database mdb\nmaxsize 67108864\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\nrootpw {ROOT_PASSWORD}\n\
             directory {}/db\n",
            dir.display()
        ));
        std::fs::write(dir.join("slapd.conf"), config).expect("writes the configuration");
        let child = Command::new(slapd)
            .args(["-d", "0", "-f", path(&dir.join("slapd.conf")), "-h", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        let directory = Self { url: format!("ldap://127.0.0.1:{port}"), ldaps_url, ca_file, dir, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        directory.fill().await;
        Some(directory)
    }

    async fn root(&self) -> ldap3::Ldap {
        let (connection, mut ldap) = LdapConnAsync::new(&self.url).await.expect("connects");
        tokio::spawn(async move {
            let _ = connection.drive().await;
        });
        ldap.simple_bind(ROOT_DN, ROOT_PASSWORD).await.expect("binds").success().expect("root binds");
        ldap
    }

    async fn add(&self, dn: &str, attributes: Vec<(&str, Vec<&str>)>) {
        let mut ldap = self.root().await;
        let attributes: Vec<(&str, HashSet<&str>)> =
            attributes.into_iter().map(|(name, values)| (name, values.into_iter().collect())).collect();
        ldap.add(dn, attributes).await.expect("adds").success().unwrap_or_else(|error| panic!("adding {dn}: {error}"));
        let _ = ldap.unbind().await;
    }

    async fn fill(&self) {
        self.add(
            SUFFIX,
            vec![("objectClass", vec!["dcObject", "organization"]), ("o", vec!["Example"]), ("dc", vec!["example"])],
        )
        .await;
        for unit in ["people", "groups"] {
            let dn = format!("ou={unit},{SUFFIX}");
            self.add(&dn, vec![("objectClass", vec!["organizationalUnit"]), ("ou", vec![unit])]).await;
        }
        self.add(
            SERVICE_DN,
            vec![
                ("objectClass", vec!["organizationalRole", "simpleSecurityObject"]),
                ("cn", vec!["loquat-service"]),
                ("userPassword", vec![SERVICE_PASSWORD]),
            ],
        )
        .await;
    }

    /// Adds a person `uid` (`cn` = `name`, `mail`, cleartext `password`); `disabled` sets
    /// `employeeType: disabled`. Returns the DN.
    pub async fn add_person(&self, uid: &str, name: &str, mail: &str, password: &str, disabled: bool) -> String {
        let dn = format!("uid={uid},{PEOPLE}");
        let surname = name.rsplit(' ').next().unwrap_or(name);
        let mut attributes = vec![
            ("objectClass", vec!["inetOrgPerson"]),
            ("uid", vec![uid]),
            ("cn", vec![name]),
            ("sn", vec![surname]),
            ("mail", vec![mail]),
            ("userPassword", vec![password]),
        ];
        if disabled {
            attributes.push(("employeeType", vec!["disabled"]));
        }
        self.add(&dn, attributes).await;
        dn
    }

    /// Adds a group `cn` with these members' DNs.
    pub async fn add_group(&self, cn: &str, members: &[&str]) -> String {
        let dn = format!("cn={cn},{GROUPS}");
        self.add(&dn, vec![("objectClass", vec!["groupOfNames"]), ("cn", vec![cn]), ("member", members.to_vec())])
            .await;
        dn
    }

    /// Replaces a group's members.
    pub async fn set_members(&self, group: &str, members: &[&str]) {
        let mut ldap = self.root().await;
        let members: HashSet<&str> = members.iter().copied().collect();
        ldap.modify(group, vec![Mod::Replace("member", members)]).await.expect("modifies").success().expect("modified");
        let _ = ldap.unbind().await;
    }

    /// Sets a person's `employeeType` (`disabled`, or anything else).
    pub async fn set_employee_type(&self, person: &str, value: &str) {
        let mut ldap = self.root().await;
        let values: HashSet<&str> = [value].into_iter().collect();
        ldap.modify(person, vec![Mod::Replace("employeeType", values)]).await.expect("modifies").success().expect("ok");
        let _ = ldap.unbind().await;
    }

    /// Stops slapd (the directory is then down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestDirectory {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
