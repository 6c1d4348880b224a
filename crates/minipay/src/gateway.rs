//! The API gateway (Envoy) in front of a local stack, with the very configuration that
//! docker-compose.yml and Kubernetes run (`k8s/base/gateway/envoy.yaml`, compiled in): only
//! its listen addresses, upstream addresses and certificate paths are swapped for local
//! ones ([`render`] names each swap and refuses a configuration in which one is not found
//! exactly as often as expected), and the certificate is a test one made at run time
//! ([`TestTls`]).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The gateway configuration shared by compose, Kubernetes and the local runs.
pub const CONFIG: &str = include_str!("../../../k8s/base/gateway/envoy.yaml");

/// Where the deployed configuration keeps the certificate and key.
const DEPLOYED_TLS_DIR: &str = "/etc/minipay/tls/";

/// The gateway's ports (all on 127.0.0.1 locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPorts {
    /// HTTPS: the only public port.
    pub https: u16,
    /// Readiness (`/ready`) and Envoy's own metrics, for probes and Prometheus.
    pub probes: u16,
    /// Envoy's admin interface.
    pub admin: u16,
}

impl GatewayPorts {
    /// The deployed ports.
    pub fn standard() -> Self {
        GatewayPorts {
            https: 8443,
            probes: 9902,
            admin: 9901,
        }
    }

    /// Free ports picked by the OS (tests).
    pub fn ephemeral() -> std::io::Result<Self> {
        let p = crate::stack::free_ports(3)?;
        Ok(GatewayPorts {
            https: p[0],
            probes: p[1],
            admin: p[2],
        })
    }
}

/// Why the gateway could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No Envoy binary.
    #[error(
        "Envoy is not installed: run `bash scripts/install-envoy.sh` (or set ENVOY_BIN to an envoy 1.40 binary)"
    )]
    NotInstalled,
    /// The installer failed.
    #[error("scripts/install-envoy.sh failed: {0}")]
    Install(String),
    /// The shared configuration changed in a way the local swap does not know.
    #[error(
        "the gateway configuration has `{pattern}` {found} time(s), expected {expected}: update crates/minipay/src/gateway.rs together with k8s/base/gateway/envoy.yaml"
    )]
    Render {
        /// What was looked for.
        pattern: String,
        /// How often it should be there.
        expected: usize,
        /// How often it is.
        found: usize,
    },
    /// The test certificate could not be made.
    #[error("cannot generate the gateway's test certificate")]
    Certificate(#[source] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// Which.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// [`CONFIG`] for a local run: listeners on 127.0.0.1 at `ports`, order-svc and notify-svc
/// at 127.0.0.1 on their HTTP ports, the certificate and key in `tls_dir`.
pub fn render(
    ports: GatewayPorts,
    order_http: u16,
    notify_http: u16,
    tls_dir: &Path,
) -> Result<String, GatewayError> {
    let tls_dir = format!("{}/", tls_dir.display());
    let swaps: [(&str, String, usize); 6] = [
        (
            "address: 0.0.0.0, port_value: 8443",
            format!("address: 127.0.0.1, port_value: {}", ports.https),
            1,
        ),
        (
            "address: 0.0.0.0, port_value: 9902",
            format!("address: 127.0.0.1, port_value: {}", ports.probes),
            1,
        ),
        // The admin listener and the probes' route to it.
        (
            "address: 127.0.0.1, port_value: 9901",
            format!("address: 127.0.0.1, port_value: {}", ports.admin),
            2,
        ),
        (
            "address: order-svc, port_value: 8080",
            format!("address: 127.0.0.1, port_value: {order_http}"),
            1,
        ),
        (
            "address: notify-svc, port_value: 8081",
            format!("address: 127.0.0.1, port_value: {notify_http}"),
            1,
        ),
        // tls.crt and tls.key.
        (DEPLOYED_TLS_DIR, tls_dir, 2),
    ];
    let mut config = CONFIG.to_owned();
    for (pattern, replacement, expected) in swaps {
        let found = config.matches(pattern).count();
        if found != expected {
            return Err(GatewayError::Render {
                pattern: pattern.to_owned(),
                expected,
                found,
            });
        }
        config = config.replace(pattern, &replacement);
    }
    Ok(config)
}

/// A test certificate authority and the gateway's certificate for `localhost` and
/// `127.0.0.1` signed by it, written as `ca.pem`, `tls.crt` and `tls.key` into a folder.
#[derive(Debug, Clone)]
pub struct TestTls {
    /// The folder.
    pub dir: PathBuf,
    /// The CA certificate (PEM), which clients trust.
    pub ca_pem: String,
}

impl TestTls {
    /// Generates both certificates (ECDSA P-256, valid for a week) into `dir`, created if
    /// needed; the key file is readable by its owner only.
    pub fn generate(dir: &Path) -> Result<TestTls, GatewayError> {
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(GatewayError::Certificate)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Minipay local test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let (start, end) = validity();
        ca_params.not_before = start;
        ca_params.not_after = end;
        let ca_key = KeyPair::generate().map_err(GatewayError::Certificate)?;
        let ca =
            CertifiedIssuer::self_signed(ca_params, ca_key).map_err(GatewayError::Certificate)?;

        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(GatewayError::Certificate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = start;
        params.not_after = end;
        let key = KeyPair::generate().map_err(GatewayError::Certificate)?;
        let cert = params
            .signed_by(&key, &ca)
            .map_err(GatewayError::Certificate)?;

        std::fs::create_dir_all(dir).map_err(|source| GatewayError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let ca_pem = ca.pem();
        write(&dir.join("ca.pem"), &ca_pem, 0o644)?;
        write(&dir.join("tls.crt"), &cert.pem(), 0o644)?;
        write(&dir.join("tls.key"), &key.serialize_pem(), 0o600)?;
        Ok(TestTls {
            dir: dir.to_owned(),
            ca_pem,
        })
    }

    /// The CA certificate's file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA as a certificate an HTTP client trusts.
    pub fn ca_certificate(&self) -> Result<reqwest::Certificate, reqwest::Error> {
        reqwest::Certificate::from_pem(self.ca_pem.as_bytes())
    }
}

/// From a day ago (clock skew) to a week ahead.
fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    (now - day, now + day * 7)
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), GatewayError> {
    crate::stack::write_file(path, contents, mode).map_err(|source| GatewayError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The Envoy binary: `ENVOY_BIN` if set, otherwise the one `scripts/install-envoy.sh`
/// installs (running it when this binary was built from a checkout that has it: it is a
/// no-op once installed).
pub async fn envoy_binary() -> Result<PathBuf, GatewayError> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(GatewayError::NotInstalled)
        };
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-envoy.sh");
    if !script.is_file() {
        return Err(GatewayError::NotInstalled);
    }
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| GatewayError::Install(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        return Err(GatewayError::Install(format!("{}: {last}", output.status)));
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(GatewayError::NotInstalled)
    }
}

/// How to run the gateway in front of a local stack.
#[derive(Debug, Clone)]
pub struct GatewaySetup {
    /// Where it listens.
    pub ports: GatewayPorts,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// Its certificate (and the CA that clients and the simulator trust).
    pub tls: TestTls,
}

impl GatewaySetup {
    /// Envoy found or installed, a fresh test certificate in `dir`.
    pub async fn prepare(ports: GatewayPorts, dir: &Path) -> Result<GatewaySetup, GatewayError> {
        let envoy = envoy_binary().await?;
        let tls = TestTls::generate(dir)?;
        Ok(GatewaySetup { ports, envoy, tls })
    }

    /// Its public base URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.https)
    }

    /// An HTTP client that trusts the gateway's test CA.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        crate::purchase::client(vec![self.tls.ca_certificate()?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_configuration_renders_for_a_local_run() {
        let ports = GatewayPorts {
            https: 18443,
            probes: 19902,
            admin: 19901,
        };
        let config = render(ports, 18080, 18081, Path::new("/tmp/gw")).unwrap();
        for expected in [
            "address: 127.0.0.1, port_value: 18443",
            "address: 127.0.0.1, port_value: 19902",
            "address: 127.0.0.1, port_value: 18080",
            "address: 127.0.0.1, port_value: 18081",
            "filename: /tmp/gw/tls.crt",
            "filename: /tmp/gw/tls.key",
        ] {
            assert_eq!(config.matches(expected).count(), 1, "{expected}");
        }
        assert_eq!(
            config
                .matches("address: 127.0.0.1, port_value: 19901")
                .count(),
            2
        );
        for gone in [
            "0.0.0.0",
            "order-svc, port",
            "notify-svc, port",
            "/etc/minipay/tls/tls.",
        ] {
            assert!(!config.contains(gone), "{gone} is still there");
        }
        // Only those lines differ: routes, limits and logs are the deployed ones.
        let changed = CONFIG
            .lines()
            .zip(config.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 8);
        assert_eq!(CONFIG.lines().count(), config.lines().count());
    }

    #[test]
    fn the_test_certificate_is_a_ca_and_a_server_certificate_it_signed() {
        let dir = std::env::temp_dir().join(format!("minipay-tls-{}", std::process::id()));
        let tls = TestTls::generate(&dir).unwrap();
        let crt = std::fs::read_to_string(dir.join("tls.crt")).unwrap();
        let key = std::fs::read_to_string(dir.join("tls.key")).unwrap();
        assert!(crt.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(crt, tls.ca_pem);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("tls.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(tls.ca_certificate().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
