//! TLS for the simulated API server: a certificate authority generated at start, a server
//! certificate it signs for 127.0.0.1 and localhost, and a listener that completes the
//! handshake before axum sees a connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;
use tokio_rustls::rustls::{ServerConfig, crypto};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// The generated certificate authority and the server's TLS settings.
#[derive(Clone)]
pub(crate) struct Tls {
    /// The CA certificate, PEM: what a kubeconfig's `certificate-authority-data` carries.
    pub(crate) ca_pem: String,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// A fresh CA and server certificate (rustls on ring, the graph's one provider).
    pub(crate) fn generate() -> Result<Self, String> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| format!("cannot generate the {what}: {e}");
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", &e))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "kyb-sim-ca");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(|e| fail("CA key", &e))?;
        let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| fail("CA", &e))?;

        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(|e| fail("server certificate", &e))?;
        server
            .distinguished_name
            .push(DnType::CommonName, "kyb-sim-apiserver");
        let server_key = KeyPair::generate().map_err(|e| fail("server key", &e))?;
        let cert = server
            .signed_by(&server_key, &issuer)
            .map_err(|e| fail("server certificate", &e))?;
        let key = PrivatePkcs8KeyDer::from(server_key.serialize_der());
        let config =
            ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| fail("TLS settings", &e))?
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone(), issuer.der().clone()], key.into())
                .map_err(|e| fail("TLS settings", &e))?;
        Ok(Self {
            ca_pem: issuer.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// A listener serving TLS on `tcp`.
    pub(crate) fn listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: self.acceptor.clone(),
        }
    }
}

/// Accepts TCP connections and completes their TLS handshake; failed handshakes are
/// dropped (the client sees the error).
pub(crate) struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
