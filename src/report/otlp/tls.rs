//! https for the export: rustls through ureq, trusting the built-in
//! Mozilla roots, or only the CA certificates of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` when set (as the OpenTelemetry SDKs
//! do); a client certificate and key for mutual TLS when both are set.

use std::path::Path;
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::target::TlsFiles;

/// The client's TLS settings from `files`; `Err` names the file and why
/// it cannot be used.
pub fn config(files: &TlsFiles) -> Result<TlsConfig, String> {
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &files.ca {
        let certs = certificates(ca)?;
        builder = builder.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert)?;
            let key = private_key(key)?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err("a client certificate without OTEL_EXPORTER_OTLP_CLIENT_KEY".into());
        }
        (None, Some(_)) => {
            return Err("a client key without OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE".into());
        }
    }
    Ok(builder.build())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every certificate of a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = read(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn private_key(path: &Path) -> Result<PrivateKey<'static>, String> {
    let pem = read(path)?;
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::PrivateKey(k)) => return Ok(k),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!("{}: no PEM private key in it", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem").unwrap();
        let files = |ca: &Path| TlsFiles {
            ca: Some(ca.to_owned()),
            ..Default::default()
        };
        let e = config(&files(&dir.path().join("none.pem"))).unwrap_err();
        assert!(
            e.starts_with("cannot read ") && e.contains("none.pem"),
            "{e}"
        );
        let e = config(&files(&empty)).unwrap_err();
        assert!(e.ends_with("empty.pem: no PEM certificate in it"), "{e}");
        let half = TlsFiles {
            client_key: Some(empty),
            ..Default::default()
        };
        assert!(config(&half).is_err());
        assert!(config(&TlsFiles::default()).is_ok());
    }
}
