//! HTTPS for the simulator, as WeChat serves it: a server certificate, and client
//! certificates checked against a CA. A client certificate is optional for the connection
//! (WeChat's other endpoints need none) but required by `/secapi/` (the refund): each
//! request carries whether its connection presented a valid one ([`ClientCert`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tower_layer::Layer;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The simulator's TLS settings.
#[derive(Clone)]
pub struct SimTls {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTls")
    }
}

/// Whether the request's connection presented a client certificate the CA signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientCert(pub(crate) bool);

impl SimTls {
    /// From PEM text: the server's certificate chain and key, and the CA that signs merchants'
    /// client certificates.
    pub fn from_pem(cert_chain: &[u8], key: &[u8], client_ca: &[u8]) -> Result<SimTls, String> {
        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("server certificate: {e}"))?;
        if chain.is_empty() {
            return Err("server certificate: no PEM certificate".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("server key: {e}"))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(client_ca) {
            let ca = ca.map_err(|e| format!("client CA: {e}"))?;
            roots.add(ca).map_err(|e| format!("client CA: {e}"))?;
        }
        if roots.is_empty() {
            return Err("client CA: no PEM certificate".into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("client CA: {e}"))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| format!("server certificate and key: {e}"))?;
        Ok(SimTls {
            config: Arc::new(config),
        })
    }

    /// From PEM files.
    pub fn from_files(
        cert_chain: &std::path::Path,
        key: &std::path::Path,
        client_ca: &std::path::Path,
    ) -> Result<SimTls, String> {
        let read =
            |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        SimTls::from_pem(&read(cert_chain)?, &read(key)?, &read(client_ca)?)
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: SimTls,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let presented = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let app = Layer::layer(&axum::Extension(ClientCert(presented)), router);
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT);
            if let Err(e) = http1
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
